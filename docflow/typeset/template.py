"""Red-header templates (红头模板): one directory per organisation, a default one shipped.

A template directory holds ``template.yaml`` and the files it names (a header image or a
vector PDF from the printing house)::

    name: 北京市测试局红头
    colour: "#E60012"                 # the red of the 版头 (发文机关标志, separators)
    separator_mm: 0.5                 # thickness of the red separator line
    printing_office: "{organisation}办公室"   # 印发机关 in the 版记
    fonts:                            # by role, candidates tried in order (see docflow.typeset.fonts)
      xiaobiaosong: ["方正小标宋简体", "Noto Serif CJK SC:weight=bold", "serif:lang=zh-cn"]
      fangsong: [...]; heiti: [...]; kaiti: [...]; songti: [...]
    variants:                         # 文件式, 信函式, 纪要式: the 发文机关标志 of each
      file:    {header: {text: "{organisation}文件", size_pt: 42, scale: 1.0}}
      letter:  {header: {text: "{organisation}", size_pt: 36}}
      minutes: {header: {image: minutes-header.pdf, width_mm: 150}}

``{organisation}`` stands for the issuing organisation's name.  A header is either text
(size in points, ``scale`` a horizontal compression 0.5–1) or an image file in the
directory (PDF = vector, PNG or JPEG) with ``width_mm`` and/or ``height_mm``.  Everything
is validated on load: unknown fields, missing files, fonts no candidate of which is
installed.  Loading an organisation snapshots its template (the YAML and the files) into
the organisation's record, so a document is typeset from what was loaded and audited.
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import TemplateError
from .fonts import ROLES, ResolvedFont, resolve_role

VARIANTS = ("file", "letter", "minutes")
VARIANT_NAMES = {"file": "文件式", "letter": "信函式", "minutes": "纪要式"}
VARIANT_ALIASES = {"文件式": "file", "信函式": "letter", "纪要式": "minutes", **{v: v for v in VARIANTS}}
_FIELDS = {"name", "colour", "separator_mm", "printing_office", "fonts", "variants", "description"}
_HEADER_FIELDS = {"text", "image", "size_pt", "scale", "width_mm", "height_mm"}
_IMAGE_TYPES = (".pdf", ".png", ".jpg", ".jpeg")
MAX_FILE = 8 * 1024 * 1024


@dataclass(frozen=True)
class Header:
    text: str | None = None          # with {organisation}
    image: str | None = None         # a file of the template directory
    size_pt: float = 42.0
    scale: float = 1.0
    width_mm: float | None = None
    height_mm: float | None = None


@dataclass(frozen=True)
class Template:
    name: str
    colour: tuple[float, float, float]
    separator_mm: float
    printing_office: str
    fonts: Mapping[str, tuple[str, ...]]
    variants: Mapping[str, Header]
    files: Mapping[str, bytes] = field(repr=False, default_factory=dict)
    source: str = ""

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return h.hexdigest()

    def resolve_fonts(self) -> dict[str, ResolvedFont]:
        """The font of every role on this machine; TemplateError names a role none of whose fonts exists."""
        return {role: resolve_role(role, self.fonts[role]) for role in ROLES}

    def header(self, variant: str) -> Header:
        try:
            return self.variants[variant]
        except KeyError:
            raise TemplateError(f"template {self.name!r} has no {VARIANT_NAMES.get(variant, variant)} ({variant}) "
                                f"variant (it has: {', '.join(self.variants)})", template=self.name,
                                variant=variant) from None

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "digest": self.digest,
                "files": {n: base64.b64encode(d).decode() for n, d in sorted(self.files.items())}}


def _colour(value: Any, where: str) -> tuple[float, float, float]:
    if not isinstance(value, str) or not re.fullmatch(r"#[0-9A-Fa-f]{6}", value):
        raise TemplateError(f"{where}: colour is #RRGGBB, not {value!r}", field="colour")
    return tuple(int(value[i:i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def _number(value: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
        raise TemplateError(f"{where} is a number from {lo:g} to {hi:g}, not {value!r}", field=where)
    return float(value)


def _header(data: Any, where: str, files: Mapping[str, bytes]) -> Header:
    if not isinstance(data, Mapping):
        raise TemplateError(f"{where} is a mapping (text or image, size_pt, scale, width_mm, height_mm)", field=where)
    unknown = set(map(str, data)) - _HEADER_FIELDS
    if unknown:
        raise TemplateError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}", field=where)
    text, image = data.get("text"), data.get("image")
    if (text is None) == (image is None):
        raise TemplateError(f"{where}: give either text or image", field=where)
    if text is not None and (not isinstance(text, str) or not text.strip()):
        raise TemplateError(f"{where}.text must be text", field=where)
    if image is not None:
        if not isinstance(image, str) or "/" in image or "\\" in image or image.startswith("."):
            raise TemplateError(f"{where}.image is a file name in the template directory", field=where)
        if not image.lower().endswith(_IMAGE_TYPES):
            raise TemplateError(f"{where}.image {image}: a header image is PDF (vector), PNG or JPEG", field=where)
        if image not in files:
            raise TemplateError(f"{where}.image {image} is not in the template directory", field=where, file=image)
        if data.get("width_mm") is None and data.get("height_mm") is None:
            raise TemplateError(f"{where}: an image header needs width_mm or height_mm", field=where)
    return Header(text=text.strip() if text else None, image=image,
                  size_pt=_number(data.get("size_pt", 42), f"{where}.size_pt", 10, 80),
                  scale=_number(data.get("scale", 1.0), f"{where}.scale", 0.5, 1.0),
                  width_mm=None if data.get("width_mm") is None else _number(data["width_mm"], f"{where}.width_mm",
                                                                             10, 170),
                  height_mm=None if data.get("height_mm") is None else _number(data["height_mm"],
                                                                               f"{where}.height_mm", 5, 60))


def parse_template(files: Mapping[str, bytes], source: str) -> Template:
    """A validated template from the files of its directory (``template.yaml`` and what it names)."""
    if "template.yaml" not in files:
        raise TemplateError(f"{source}: a template directory holds template.yaml", file=source)
    try:
        data = yaml.safe_load(files["template.yaml"].decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        raise TemplateError(f"{source}/template.yaml is not valid YAML (UTF-8)", file=source) from None
    if not isinstance(data, Mapping):
        raise TemplateError(f"{source}/template.yaml is a mapping", file=source)
    unknown = set(map(str, data)) - _FIELDS
    if unknown:
        raise TemplateError(f"{source}/template.yaml: unknown field(s) {', '.join(sorted(unknown))}", file=source)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TemplateError(f"{source}/template.yaml: name is required", file=source, field="name")
    fonts_raw = data.get("fonts")
    if not isinstance(fonts_raw, Mapping):
        raise TemplateError(f"{source}: fonts gives the candidates of each role ({', '.join(ROLES)})", file=source)
    unknown = set(map(str, fonts_raw)) - set(ROLES)
    missing = [r for r in ROLES if r not in fonts_raw]
    if unknown or missing:
        raise TemplateError(f"{source}: fonts has roles {', '.join(ROLES)}"
                            + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
                            + (f"; missing: {', '.join(missing)}" if missing else ""), file=source)
    fonts: dict[str, tuple[str, ...]] = {}
    for role in ROLES:
        value = fonts_raw[role]
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise TemplateError(f"{source}: fonts.{role} lists font candidates", file=source, field=f"fonts.{role}")
        fonts[role] = tuple(v.strip() for v in value)
    variants_raw = data.get("variants")
    if not isinstance(variants_raw, Mapping) or not variants_raw:
        raise TemplateError(f"{source}: variants gives the header of file, letter and/or minutes", file=source)
    variants: dict[str, Header] = {}
    for key, spec in variants_raw.items():
        variant = VARIANT_ALIASES.get(str(key))
        if variant is None:
            raise TemplateError(f"{source}: unknown variant {key!r} (file 文件式, letter 信函式, minutes 纪要式)",
                                file=source, variant=str(key))
        if not isinstance(spec, Mapping) or set(map(str, spec)) - {"header"} or "header" not in spec:
            raise TemplateError(f"{source}: variants.{key} is a mapping with header", file=source)
        variants[variant] = _header(spec["header"], f"variants.{key}.header", files)
    office = data.get("printing_office", "{organisation}办公室")
    if not isinstance(office, str) or not office.strip():
        raise TemplateError(f"{source}: printing_office is text", file=source)
    return Template(name=name.strip(), colour=_colour(data.get("colour", "#E60012"), "colour"),
                    separator_mm=_number(data.get("separator_mm", 0.5), "separator_mm", 0.1, 2.0),
                    printing_office=office.strip(), fonts=fonts, variants=variants, files=dict(files),
                    source=source)


def load_template_dir(path: str | Path) -> Template:
    """Read a template directory (its files, not sub-directories) and validate it."""
    p = Path(path)
    if not p.is_dir():
        raise TemplateError(f"template directory {p} does not exist", file=str(p))
    files: dict[str, bytes] = {}
    for f in sorted(p.iterdir()):
        if f.is_file() and not f.name.startswith("."):
            if f.stat().st_size > MAX_FILE:
                raise TemplateError(f"{f}: a template file is at most {MAX_FILE // 2**20} MiB", file=str(f))
            files[f.name] = f.read_bytes()
    return parse_template(files, str(p))


def template_from_snapshot(data: Mapping[str, Any]) -> Template:
    files = {n: base64.b64decode(v) for n, v in data["files"].items()}
    return parse_template(files, data.get("source") or data.get("name") or "stored template")


def default_template_dir() -> Path:
    from pki.profiles import default_policy_dir
    return default_policy_dir() / "templates" / "default"


def default_template() -> Template:
    return _default()


_CACHE: dict[str, Template] = {}


def _default() -> Template:
    path = default_template_dir()
    key = str(path)
    if key not in _CACHE:
        _CACHE[key] = load_template_dir(path)
    return _CACHE[key]
