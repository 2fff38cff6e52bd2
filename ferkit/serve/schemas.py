"""Pydantic models of the answers, for the OpenAPI document (``/docs``); handlers build the JSON directly."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FaceOut(BaseModel):
    box: list[float] = Field(description="x1, y1, x2, y2 in pixels of the uploaded image")
    box_xywh: list[float] = Field(description="x, y, width, height")
    score: float = Field(description="detection score (1.0 with ?detect=false)")
    label: str = Field(description="most likely expression")
    label_score: float = Field(description="its probability")
    scores: dict[str, float] = Field(description="probability per expression, in the model's label order; sums to 1")
    landmarks: list[list[float]] | None = Field(description="five (x, y) points, or null")
    logits: dict[str, float] | None = Field(None, description="raw logits (only with ?logits=true)")


class AnnotatedOut(BaseModel):
    media_type: str = Field(description="image/jpeg or image/png")
    data: str = Field(description="base64 of the annotated image")


class RecordOut(BaseModel):
    input: str = Field(description="the uploaded file's name")
    faces: list[FaceOut]
    error: str | None = Field(description="null, or why this image failed")
    status: int = Field(description="200, or the HTTP status this image alone would have got")
    annotated: AnnotatedOut | None = Field(None, description="only with ?annotate=jpeg|png")


class PredictOut(BaseModel):
    model: str
    records: list[RecordOut]
    failed: int = Field(description="images with an error")
    faces: int = Field(description="faces found in all images")
    seconds: float = Field(description="time spent on the request by the server")


class VideoRecordOut(BaseModel):
    input: str
    frame: int | None = None
    timestamp: float | None = None
    faces: list[FaceOut]
    error: str | None


class ModelOut(BaseModel):
    name: str
    default: bool
    state: str = Field(description="loading, ready, failed or closed")
    error: str | None
    weights: str = Field(description="trained, untrained (random: predictions mean nothing) or unknown")
    trained: bool | None
    description: str
    arch: str | None = None
    backend: str | None = None
    device: str | None = None
    label_names: list[str] | None = None
    num_classes: int | None = None
    input_size: int | None = None
    detector: str | None = None
    crop: str | None = None
    max_batch: int | None = None
    colours: dict[str, str] | None = None


class ModelsOut(BaseModel):
    default: str
    models: list[ModelOut]
    limits: dict


class ErrorDetail(BaseModel):
    status: int
    type: str = Field(description="machine-readable kind, e.g. payload_too_large, not_an_image, overloaded")
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


_ERROR_TEXT = {400: "malformed request or undecodable image", 401: "missing or wrong X-API-Key",
               413: "body, image (pixels) or image count over the limits",
               415: "not an accepted content type or image format", 422: "invalid parameter or no image in the form",
               503: "queue full or timeout (see Retry-After), not ready, or shutting down"}
ERRORS = {code: {"model": ErrorOut, "description": text} for code, text in _ERROR_TEXT.items()}
