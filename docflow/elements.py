"""GB/T 9704-2012 document elements (公文格式要素) kept as metadata, and document digests.

The body (正文) is the PDF itself; the other elements are recorded beside it.
Some are filled by the flow, never typed in: 发文字号 at registration, 签发人 and
成文日期 at sign-off, 印发日期 at registration.  Classified content never enters
the system: a 密级 other than none is refused.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping

from pki.sm2 import sm3

from .errors import ElementError

#: China Standard Time (no daylight saving since 1991): the calendar of 成文日期 and 发文字号 years
CHINA_TIME = timezone(timedelta(hours=8), "CST")

#: the only 密级 values accepted: the document is not classified
UNCLASSIFIED = ("无", "none", "")
#: 紧急程度 (GB/T 9704 §7.2.4; telegrams add 特提 and 平急)
URGENCIES = ("特提", "特急", "加急", "平急")


def china_date(at: datetime) -> date:
    return at.astimezone(CHINA_TIME).date()


def chinese_date(d: date) -> str:
    """成文日期 as GB/T 9704 writes it: 2026年5月8日 (Arabic numerals, no leading zeros)."""
    return f"{d.year}年{d.month}月{d.day}日"


def check_classification(value: str | None) -> None:
    if value is None or value.strip().lower() in UNCLASSIFIED:
        return
    raise ElementError(f"密级 {value!r}: classified content never enters the system "
                       "(only unclassified documents, 密级 无)", field="classification", value=value)


def check_urgency(value: str | None) -> str | None:
    if value is None or not value.strip() or value.strip() in ("无", "none"):
        return None
    if value.strip() not in URGENCIES:
        raise ElementError(f"紧急程度 {value!r} is not one of {', '.join(URGENCIES)}", field="urgency", value=value)
    return value.strip()


def _names(values: Any, what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    out = tuple(str(v).strip() for v in values)
    if any(not v for v in out):
        raise ElementError(f"{what}: an empty name", field=what)
    if len(set(out)) != len(out):
        raise ElementError(f"{what}: a name is listed twice", field=what)
    return out


@dataclass(frozen=True)
class Elements:
    """The GB/T 9704 elements of one document (Chinese names in `LABELS`)."""

    title: str                                  # 标题
    issuer: str                                 # 发文机关 (署名)
    doc_number: str | None = None               # 发文字号, assigned at registration
    signer: str | None = None                   # 签发人, written by the sign-off step
    date: str | None = None                     # 成文日期, the sign-off date
    urgency: str | None = None                  # 紧急程度
    main_recipients: tuple[str, ...] = ()       # 主送机关
    copy_to: tuple[str, ...] = ()               # 抄送机关
    attachments: tuple[str, ...] = ()           # 附件说明: declared attachment names
    note: str | None = None                     # 附注
    printed_on: str | None = None               # 印发日期
    received_number: str | None = None          # 收文编号 (incoming)
    signed_for_at: str | None = None            # 签收时间 (incoming)
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise ElementError("标题 (title) is required", field="title")
        if len(self.title) > 200:
            raise ElementError("标题 (title) is at most 200 characters", field="title")
        object.__setattr__(self, "urgency", check_urgency(self.urgency))
        object.__setattr__(self, "main_recipients", _names(self.main_recipients, "main_recipients"))
        object.__setattr__(self, "copy_to", _names(self.copy_to, "copy_to"))
        object.__setattr__(self, "attachments", _names(self.attachments, "attachments"))

    @property
    def classification(self) -> str:
        return "无"

    def with_(self, **changes: Any) -> "Elements":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"title": self.title, "issuer": self.issuer, "doc_number": self.doc_number,
                                "signer": self.signer, "date": self.date, "classification": self.classification,
                                "urgency": self.urgency, "main_recipients": list(self.main_recipients),
                                "copy_to": list(self.copy_to), "attachments": list(self.attachments),
                                "note": self.note, "printed_on": self.printed_on}
        if self.received_number or self.signed_for_at:
            data["received_number"] = self.received_number
            data["signed_for_at"] = self.signed_for_at
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Elements":
        return cls(title=data["title"], issuer=data["issuer"], doc_number=data.get("doc_number"),
                   signer=data.get("signer"), date=data.get("date"), urgency=data.get("urgency"),
                   main_recipients=tuple(data.get("main_recipients") or ()),
                   copy_to=tuple(data.get("copy_to") or ()), attachments=tuple(data.get("attachments") or ()),
                   note=data.get("note"), printed_on=data.get("printed_on"),
                   received_number=data.get("received_number"), signed_for_at=data.get("signed_for_at"),
                   extra=dict(data.get("extra") or {}))


LABELS = {"title": "标题", "issuer": "发文机关", "doc_number": "发文字号", "signer": "签发人", "date": "成文日期",
          "classification": "密级", "urgency": "紧急程度", "main_recipients": "主送", "copy_to": "抄送",
          "attachments": "附件", "note": "附注", "printed_on": "印发日期", "received_number": "收文编号",
          "signed_for_at": "签收时间"}


@dataclass(frozen=True)
class Digests:
    """SHA-256 and SM3 of a document's bytes (hex)."""

    sha256: str
    sm3: str
    size: int

    @classmethod
    def of(cls, data: bytes) -> "Digests":
        return cls(sha256=hashlib.sha256(data).hexdigest(), sm3=sm3(data).hex(), size=len(data))

    def matches(self, data: bytes) -> bool:
        return Digests.of(data) == self

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "sm3": self.sm3, "size": self.size}
