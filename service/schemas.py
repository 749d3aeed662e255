"""Request and response bodies. Every field carries a description and a Chinese example."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

# strict: "0.5" and true are refused, not converted (an integer 0 or 1 is a number and is accepted)
Probability = Annotated[float, Field(ge=0.0, le=1.0, strict=True)]


def _threshold_kind(value: Any) -> str:
    return "map" if isinstance(value, dict) else "number"


# one error naming the branch the value was meant for ("threshold.map.modem_pool: ..."), not two
Threshold = Annotated[
    Annotated[Probability, Tag("number")] | Annotated[dict[str, Probability], Tag("map")],
    Discriminator(_threshold_kind),
]
_SURROGATE = re.compile("[\ud800-\udfff]")
EXAMPLE_TEXT = (
    "二、出租屋“猫池”窝点案。民警根据群众举报，在城东一处出租屋内查获猫池设备6台、手机卡900余张，"
    "现场抓获看管设备的犯罪嫌疑人2名。"
)


class TagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        strict=True,
        description="The article as scraped: plain text, HTML or Markdown (WeChat boilerplate is dropped). "
        "Must contain a non-whitespace character (else 422 empty_text). A lone UTF-16 surrogate (an "
        "unpaired \\ud800-\\udfff escape) is replaced by U+FFFD, so offsets are unchanged.",
        examples=[EXAMPLE_TEXT],
        # documented here, enforced by the route with the stable code empty_text
        json_schema_extra={"minLength": 1, "pattern": "\\S"},
    )
    format: Literal["auto", "text", "html", "markdown"] = Field(
        "auto", description="Input format; 'auto' detects HTML and Markdown.", examples=["auto"]
    )
    threshold: Threshold | None = Field(
        None,
        description="Replace the model's tuned thresholds: one value for every label, or a map label → value.",
        examples=[{"modem_pool": 0.3}],
    )
    evidence: bool = Field(
        True, strict=True, description="Return evidence spans for predicted labels.", examples=[True]
    )

    @field_validator("text")
    @classmethod
    def _replace_lone_surrogates(cls, text: str) -> str:
        # JSON may escape half of a UTF-16 pair; such text cannot be encoded in the UTF-8 response
        try:
            text.encode("utf-8")  # the fast check: a few ms for 2 MB, and most text passes
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", text)
        return text


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    articles: list[TagRequest] = Field(
        min_length=1,
        description="Articles to tag (at most HEICHAN_MAX_BATCH, default 32; more: 413 batch_too_large).",
        examples=[[{"text": EXAMPLE_TEXT}, {"text": "谨防电信网络诈骗，守护好您的钱袋子！"}]],
    )


class ModelInfo(BaseModel):
    name: str = Field(description="Model name.", examples=["heichan-ngram"])
    version: str = Field(description="Model version.", examples=["1"])
    taxonomy_version: int = Field(description="Taxonomy version the model was trained on.", examples=[1])


class ParagraphTags(BaseModel):
    index: int = Field(description="Position of the paragraph in the article.", examples=[0])
    start: int = Field(description="Offset of the paragraph in the cleaned `text`.", examples=[0])
    end: int = Field(description="End offset (exclusive) in the cleaned `text`.", examples=[58])
    text: str = Field(description="The paragraph.", examples=[EXAMPLE_TEXT])
    labels: list[str] = Field(
        description="Predicted labels; [] means no black-market activity.", examples=[["sim_card_supply", "modem_pool"]]
    )
    scores: dict[str, float] = Field(
        description="Probability for every label the model knows.", examples=[{"modem_pool": 0.998}]
    )
    evidence: dict[str, list[list[int]]] = Field(
        description="For each predicted label, [start, end] spans of the cleaned `text` that support it.",
        examples=[{"modem_pool": [[8, 12], [33, 37]]}],
    )


class ArticleTags(BaseModel):
    text: str = Field(description="The cleaned article; all offsets point into it.", examples=[EXAMPLE_TEXT])
    labels: list[str] = Field(
        description="Article labels: those carried by at least one paragraph.",
        examples=[["sim_card_supply", "modem_pool"]],
    )
    scores: dict[str, float] = Field(
        description="Article score per label: its highest paragraph score.", examples=[{"modem_pool": 0.998}]
    )
    paragraphs: list[ParagraphTags] = Field(
        description="The article's paragraphs in order; boilerplate is not included."
    )


class TagResponse(ArticleTags):
    model: ModelInfo = Field(description="The model that produced these tags.")


class BatchResponse(BaseModel):
    model: ModelInfo = Field(description="The model that produced these tags.")
    results: list[ArticleTags] = Field(description="One result per article, in request order.")


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Name of a model directory under the server's models directory (never a path).",
        examples=["heichan-ngram-v2"],
    )


class ReloadResponse(BaseModel):
    model: ModelInfo = Field(description="The model now serving.")
    previous: ModelInfo | None = Field(description="The model it replaced, if any.")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code.", examples=["empty_text"])
    message: str = Field(description="What went wrong and what to do.", examples=["text is empty or only whitespace"])
    request_id: str = Field(
        description="Also in the X-Request-ID header and the server log.", examples=["3f2c9a7e1b0d4c55"]
    )


class ErrorResponse(BaseModel):
    error: ErrorBody = Field(description="What went wrong.")
