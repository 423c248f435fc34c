#!/usr/bin/env python3
"""Check docker-compose.yml without a Docker engine: the closest stand-in for `docker compose config`.

1. Load the file with PyYAML (anchors, aliases and `<<` merge keys resolve here; a duplicate key is an error,
   as it is for Compose).
2. Interpolate every value as Compose does: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
   ${VAR:?message}, ${VAR?message}, ${VAR:+alt}, ${VAR+alt}, nested defaults included. The environment is
   empty (the run does not depend on the caller's variables); a required variable gets a dummy value.
3. Validate against the compose-spec JSON schema that the check-jsonschema package vendors
   (its builtin `vendor.compose-spec`), with the jsonschema package.
4. Check what the schema cannot: every depends_on target is a service, a `condition: service_healthy`
   target has a healthcheck, every named volume and network a service uses is declared, every service has
   an image or a build, no host port is published twice.

Needs: `pip install check-jsonschema PyYAML` (check-jsonschema brings jsonschema and the schema).
Usage: python .ci/compose_check.py [docker-compose.yml]   -> prints OK, or the errors and exits 1.
"""
from __future__ import annotations

import json
import re
import sys
from importlib import resources
from pathlib import Path

import yaml

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
EXPR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", re.S)


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key written twice in one mapping (keys brought in by `<<` may be overridden)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


class Interpolator:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.required: set[str] = set()
        self.defaulted: set[str] = set()
        self.unset: set[str] = set()
        self.errors: list[str] = []

    def string(self, s: str, where: str) -> str:
        out, i = [], 0
        while i < len(s):
            c = s[i]
            if c != "$":
                out.append(c)
                i += 1
            elif s.startswith("$$", i):
                out.append("$")
                i += 2
            elif s.startswith("${", i):
                depth, j = 0, i + 1
                while j < len(s):
                    depth += {"{": 1, "}": -1}.get(s[j], 0)
                    if depth == 0:
                        break
                    j += 1
                if j >= len(s):
                    self.errors.append(f"{where}: unterminated ${{ in {s!r}")
                    return s
                out.append(self.expression(s[i + 2 : j], where))
                i = j + 1
            else:
                m = NAME.match(s, i + 1)
                if not m:
                    self.errors.append(f"{where}: invalid template {s!r} (a lone '$' must be written '$$')")
                    return s
                out.append(self.lookup(m.group(), where))
                i = m.end()
        return "".join(out)

    def lookup(self, var: str, where: str) -> str:
        if var not in self.env:
            self.unset.add(var)
        return self.env.get(var, "")

    def expression(self, expr: str, where: str) -> str:
        m = EXPR.fullmatch(expr)
        if not m:
            self.errors.append(f"{where}: invalid interpolation ${{{expr}}}")
            return ""
        var, op, arg = m.group(1), m.group(2), m.group(3) or ""
        value = self.env.get(var)
        if op is None:
            return self.lookup(var, where)
        empty_counts = op.startswith(":")
        missing = value is None or (empty_counts and value == "")
        kind = op[-1]
        if kind == "-":
            if missing:
                self.defaulted.add(var)
                return self.string(arg, where)
            return value
        if kind == "?":
            if missing:
                self.required.add(var)
                return f"dummy-{var.lower()}"
            return value
        # "+": the alternative when set
        return "" if missing else self.string(arg, where)

    def walk(self, node, where="$"):
        if isinstance(node, str):
            return self.string(node, where)
        if isinstance(node, dict):
            return {k: self.walk(v, f"{where}.{k}") for k, v in node.items()}
        if isinstance(node, list):
            return [self.walk(v, f"{where}[{i}]") for i, v in enumerate(node)]
        return node


def load_schema():
    ref = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return json.loads(ref.read_text(encoding="utf-8"))


def schema_errors(doc) -> list[str]:
    import jsonschema

    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    out = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        path = "/".join(map(str, err.absolute_path)) or "(top level)"
        out.append(f"schema: {path}: {err.message}")
    return out


def named_volume(entry) -> str | None:
    if isinstance(entry, dict):
        return entry.get("source") if entry.get("type", "volume") == "volume" else None
    parts = str(entry).split(":")
    if len(parts) < 2:
        return None  # an anonymous volume: just a container path
    source = parts[0]
    if source.startswith((".", "/", "~")) or (len(source) == 1 and source.isalpha()):
        return None  # a bind mount
    return source


def semantic_errors(doc) -> list[str]:
    out = []
    services = doc.get("services") or {}
    volumes = doc.get("volumes") or {}
    networks = set(doc.get("networks") or {}) | {"default"}
    host_ports: dict[str, str] = {}
    for name, svc in services.items():
        svc = svc or {}
        if "image" not in svc and "build" not in svc:
            out.append(f"services.{name}: neither image nor build")
        deps = svc.get("depends_on") or {}
        deps = {d: {} for d in deps} if isinstance(deps, list) else deps
        for dep, spec in deps.items():
            if dep not in services:
                out.append(f"services.{name}.depends_on: no service {dep!r}")
                continue
            condition = (spec or {}).get("condition", "service_started")
            hc = (services[dep] or {}).get("healthcheck")
            if condition == "service_healthy" and (not hc or hc.get("disable")):
                out.append(f"services.{name}.depends_on.{dep}: service_healthy but {dep} has no healthcheck")
        for entry in svc.get("volumes") or []:
            vol = named_volume(entry)
            if vol and vol not in volumes:
                out.append(f"services.{name}.volumes: named volume {vol!r} is not declared under volumes:")
        svc_networks = svc.get("networks") or []
        for net in svc_networks if isinstance(svc_networks, list) else list(svc_networks):
            if net not in networks:
                out.append(f"services.{name}.networks: network {net!r} is not declared under networks:")
        for port in svc.get("ports") or []:
            spec = str(port.get("published", "")) if isinstance(port, dict) else str(port)
            parts = spec.split(":")
            if len(parts) >= 2:
                key = ":".join(parts[:-1])
                if key in host_ports:
                    out.append(f"services.{name}.ports: host port {key} is also published by {host_ports[key]}")
                host_ports[key] = name
    return out


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent / "docker-compose.yml")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        print(f"{path}: YAML error: {exc}")
        return 1
    if not isinstance(raw, dict):
        print(f"{path}: not a mapping")
        return 1

    interp = Interpolator(env={})
    doc = interp.walk(raw)
    errors = list(interp.errors)
    errors += schema_errors(doc)
    errors += semantic_errors(doc)

    print(f"{path}: services: {', '.join(doc.get('services') or {})}")
    print(f"  required variables (dummy values used): {', '.join(sorted(interp.required)) or 'none'}")
    print(f"  variables left to their defaults: {', '.join(sorted(interp.defaulted)) or 'none'}")
    if interp.unset:
        print(f"  variables used without a default and unset (empty): {', '.join(sorted(interp.unset))}")
    if "version" in raw:
        print("  warning: the top-level `version` key is obsolete and ignored by Compose v2")
    if errors:
        print(f"{len(errors)} error(s):")
        for e in errors:
            print(f"  {e}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
