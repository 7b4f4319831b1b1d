"""A specimen document of a template: every element GB/T 9704 lays out, for `yinxin org template --check`."""
from __future__ import annotations

from datetime import datetime

from .body import Fields, manuscript, parse_body
from .layout import Typeset, typeset
from .template import Template

SPECIMEN = """---
标题: 关于开展电子印章应用试点工作和推进公文无纸化传输有关事项的请示
主送: [上级机关, 相关单位]
抄送: [北京市财政局, 北京市审计局]
附注: （联系人：孙拟稿，电话：010-12345678）
份号: 1
紧急程度: 特急
附件: [试点单位名单]
---
为推进电子政务建设，提高公文流转效率，经研究，拟开展电子印章应用试点工作。现将有关事项请示如下。

# 总体要求

## 工作目标。通过试点，建立电子印章制作、使用、验证的完整流程，形成可推广的经验。

### 试点范围。首批选择办公室、业务处开展试点，其他处室视情况逐步推开。

#### 时间安排。2026年5月至12月。

妥否，请批示。

@附件 试点单位名单

办公室、业务处。
"""


def make_specimen(template: Template, organisation: str, *, variant: str = "file", kind: str = "upward",
             created: datetime | None = None) -> Typeset:
    m, _ = manuscript(parse_body(SPECIMEN, source="the specimen"), issuers=[organisation], variant=variant,
                      kind=kind)
    if variant == "minutes":
        m = m.with_(present=("王辉", "刘嘉", "马文印"), absent=("赵副处长",))
    fields = Fields(doc_number=f"{organisation[:2]}〔2026〕1号", signers=("吴局长",), date="2026年5月8日",
                    printed_on="2026年5月8日")
    return typeset(template, m, fields, created=created)
