"""The video benchmark times video_scenes and a bare PyAV decode of the same generated file and reports both."""
import re

import pytest

from multimodal.benchmarks.video import scene_video_make, video_bench


def test_video_benchmark_reports_both_speeds_and_their_ratio_on_the_same_file():
    bench = video_bench(data=scene_video_make(seconds=4, scene_s=2, size=(160, 120), fps=10), repeats=1)
    printed = bench.report()
    assert printed.startswith("video: 4.0 s video of 160x120, medians of 1: video_scenes ")
    assert printed.endswith("; 2 scenes")
    scenes_speed, bare_speed, ratio = map(float, re.search(
        r"= ([\d.]+) x real time; PyAV decode of every frame [\d.]+ s = ([\d.]+) x real time -> ratio ([\d.]+);",
        printed).groups())
    assert scenes_speed > 0 and bare_speed > 0
    assert ratio == pytest.approx(bench.tool_figure / bench.bare_figure, abs=0.01)
