"""The video benchmark times video_scenes and a bare PyAV decode of the same file and reports both."""
import re

import pytest

from multimodal.benchmarks.video import video_bench

from ..video_making import video_make


def test_video_benchmark_reports_both_speeds_and_their_ratio_on_the_same_file():
    bench = video_bench(data=video_make(None, scenes=[("red", 2), ("royalblue", 2)]), repeats=1)
    printed = bench.report()
    assert printed.startswith("4.0 s of video, 2 scenes, medians of 1: video_scenes ")
    scenes_speed, bare_speed, ratio = map(float, re.search(
        r"= ([\d.]+)x real time; bare PyAV decode of every frame [\d.]+ s = ([\d.]+)x real time -> ratio ([\d.]+)$",
        printed).groups())
    assert scenes_speed > 0 and bare_speed > 0
    assert ratio == pytest.approx(bench.scenes_speed / bench.bare_speed, abs=0.01)
