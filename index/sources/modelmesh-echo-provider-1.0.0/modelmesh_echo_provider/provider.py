"""The echo provider: a complete ``ProviderConnector`` that never touches the network.

It answers a chat completion with a canned answer chosen by the exact text of the
last user message, or else with ``prefix + <last user message>``. Token counts are
deterministic approximations (one token per word or punctuation mark, plus a small
per-message overhead, like OpenAI's chat accounting), so tests can assert on them.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from modelmesh.interfaces.provider import (
    ChatMessage,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    ErrorClassification,
    ModelInfo,
    ModelPricing,
    ProviderConnector,
    QuotaStatus,
    RateLimitStatus,
    TokenUsage,
)

from .config import EchoConfig

__all__ = ["CHAT_COMPLETION", "EchoProvider", "QuotaExceededError", "UnknownModelError"]

CHAT_COMPLETION = "generation.text-generation.chat-completion"
"""The capability leaf ModelMesh pools match for chat (``capability_tree.py``)."""

_TOKEN = re.compile(r"\w+|[^\w\s]")
_STREAM_PIECE = re.compile(r"\S+\s*|\s+")
_PER_MESSAGE_TOKENS = 3  # tokens; role and separators, as in OpenAI's chat accounting
_REPLY_PRIMING_TOKENS = 3  # tokens; the assistant reply header

# (name, display name, context window in tokens, max output in tokens)
_CATALOGUE: tuple[tuple[str, str, int, int], ...] = (
    ("echo-1", "Echo 1", 8192, 1024),
    ("echo-1-mini", "Echo 1 Mini", 2048, 256),
)


class UnknownModelError(KeyError):
    """A request or lookup named a model this provider does not serve."""

    def __str__(self) -> str:
        # KeyError would print the repr of its argument; say it plainly instead.
        return str(self.args[0]) if self.args else "unknown model"


class QuotaExceededError(RuntimeError):
    """The configured token budget (``quota_tokens``) is used up."""


def _count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # OpenAI content parts: [{"type": "text", "text": "..."}, {"type": "image_url", ...}]
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return _message_text(message)
    return ""


def _prompt_tokens(messages: list[dict[str, Any]]) -> int:
    total = _REPLY_PRIMING_TOKENS
    for message in messages:
        if isinstance(message, Mapping):
            total += _PER_MESSAGE_TOKENS + _count_tokens(_message_text(message))
    return total


def _apply_limits(text: str, stop: list[str] | None, max_tokens: int) -> tuple[str, str]:
    """Cut *text* at the first stop sequence, then at *max_tokens*; return it and why."""
    finish_reason = "stop"
    cuts = [text.find(s) for s in stop or () if s and s in text]
    if cuts:
        text = text[: min(cuts)]
    tokens = list(_TOKEN.finditer(text))
    if len(tokens) > max_tokens:
        text = text[: tokens[max_tokens - 1].end()] if max_tokens > 0 else ""
        finish_reason = "length"
    return text, finish_reason


def _status_code(error: Exception) -> int | None:
    for candidate in (
        getattr(error, "status_code", None),
        getattr(error, "code", None),
        getattr(getattr(error, "response", None), "status_code", None),
    ):
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            return candidate
    return None


class EchoProvider(ProviderConnector):
    """Offline provider serving ``echo-1`` and ``echo-1-mini`` at zero cost.

    Connector ID: ``demo.echo.v1``. In a ModelMesh config, name the models
    ``<anything>.echo-1`` (e.g. ``echo.echo-1``): ModelMesh strips the first dotted
    segment before calling :meth:`complete`, and this provider accepts both forms.

    Args:
        config: Optional mapping with keys ``prefix`` (str), ``answers``
            (prompt → answer) and ``quota_tokens`` (int or null); see
            :class:`~.config.EchoConfig`.

    Raises:
        InvalidEchoConfig: if *config* is malformed.
    """

    CONNECTOR_ID: str = "demo.echo.v1"

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self._config = EchoConfig.from_mapping(config)
        self._lock = threading.Lock()
        self._responses = 0
        self._tokens_used = 0
        self._usage_by_model: dict[str, TokenUsage] = {}

    @property
    def config(self) -> EchoConfig:
        """The validated configuration."""
        return self._config

    @property
    def usage_by_model(self) -> dict[str, TokenUsage]:
        """A copy of the token usage reported so far, keyed by model ID as reported."""
        with self._lock:
            return {
                model: TokenUsage(u.prompt_tokens, u.completion_tokens, u.total_tokens)
                for model, u in self._usage_by_model.items()
            }

    # -- Model execution ---------------------------------------------------------

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        """Answer a chat completion.

        Args:
            request: The request; ``model`` is a bare (``echo-1``) or dotted
                (``echo.echo-1``) model ID.

        Returns:
            One choice with the answer, ``finish_reason`` ``"stop"`` or ``"length"``
            (cut at ``max_tokens``), and the token usage.

        Raises:
            UnknownModelError: if the model is not served here.
            QuotaExceededError: if ``quota_tokens`` is already used up.
        """
        info, answer, finish_reason, usage = self._answer(request)
        self.report_usage(info.id, usage)
        return CompletionResponse(
            id=self._next_id(),
            model=info.id,
            choices=[
                CompletionChoice(
                    index=0,
                    message=ChatMessage(role="assistant", content=answer),
                    finish_reason=finish_reason,
                )
            ],
            usage=usage,
            created=int(time.time()),
        )

    # ProviderConnector declares ``stream`` as a coroutine returning an iterator, but
    # ModelMesh's router consumes it with ``async for provider.stream(...)``: an async
    # generator is the shape that actually works, so the override differs in type only.
    async def stream(  # type: ignore[override,misc]
        self, request: CompletionRequest
    ) -> AsyncIterator[CompletionResponse]:
        """Stream the same answer :meth:`complete` gives, one word per chunk.

        The first chunk carries the assistant role with empty content, the last one
        carries ``finish_reason`` and usage with no content; joining every chunk's
        ``delta.content`` reproduces the non-streaming answer exactly.

        Args:
            request: As for :meth:`complete`.

        Yields:
            ``chat.completion.chunk`` responses.

        Raises:
            UnknownModelError: if the model is not served here.
            QuotaExceededError: if ``quota_tokens`` is already used up.
        """
        info, answer, finish_reason, usage = self._answer(request)
        response_id = self._next_id()
        created = int(time.time())

        def chunk(
            delta: ChatMessage, finish: str | None = None, chunk_usage: TokenUsage | None = None
        ) -> CompletionResponse:
            return CompletionResponse(
                id=response_id,
                model=info.id,
                choices=[CompletionChoice(index=0, delta=delta, finish_reason=finish)],
                usage=chunk_usage or TokenUsage(),
                created=created,
                object="chat.completion.chunk",
            )

        yield chunk(ChatMessage(role="assistant", content=""))
        for piece in _STREAM_PIECE.findall(answer):
            yield chunk(ChatMessage(role="assistant", content=piece))
        self.report_usage(info.id, usage)
        yield chunk(ChatMessage(role="assistant", content=None), finish_reason, usage)

    # -- Capabilities and catalogue ----------------------------------------------

    def get_capabilities(self) -> list[str]:
        """Return the capability leaves served: chat completion only."""
        return [CHAT_COMPLETION]

    def supports(self, capability: str) -> bool:
        """Tell whether *capability* is chat completion or one of its ancestors.

        Args:
            capability: A dotted capability path, leaf (``…chat-completion``) or
                category (``generation.text-generation``).

        Returns:
            True if some served leaf lies at or below *capability*.
        """
        return capability == CHAT_COMPLETION or CHAT_COMPLETION.startswith(capability + ".")

    def list_models(self) -> list[ModelInfo]:
        """Return fresh descriptions of ``echo-1`` and ``echo-1-mini``."""
        return [
            ModelInfo(
                id=name,
                name=display,
                capabilities=[CHAT_COMPLETION],
                context_window=context,
                max_output_tokens=max_output,
                pricing=ModelPricing(),
                features={"system_prompt": True, "tool_calling": False, "vision": False},
                delivery={"synchronous": True, "streaming": True},
            )
            for name, display, context, max_output in _CATALOGUE
        ]

    def get_model_info(self, model_id: str) -> ModelInfo:
        """Describe one model.

        Args:
            model_id: Bare (``echo-1``) or dotted (``echo.echo-1``) model ID.

        Returns:
            The model's description.

        Raises:
            UnknownModelError: if the model is not served here.
        """
        models = {info.id: info for info in self.list_models()}
        if model_id in models:
            return models[model_id]
        _, _, bare = model_id.partition(".")
        if bare in models:
            return models[bare]
        raise UnknownModelError(
            f"echo provider has no model {model_id!r}: expected one of {sorted(models)}"
        )

    # -- Quota, rate limits, pricing, usage --------------------------------------

    def check_quota(self) -> QuotaStatus:
        """Return tokens used so far against ``quota_tokens`` (``limit=None``: unlimited)."""
        with self._lock:
            used = self._tokens_used
        limit = self._config.quota_tokens
        remaining = None if limit is None else max(limit - used, 0)
        return QuotaStatus(used=used, limit=limit, remaining=remaining)

    def get_rate_limits(self) -> RateLimitStatus:
        """Return rate-limit headroom: no request limit, tokens bounded by the quota."""
        return RateLimitStatus(
            requests_remaining=None, tokens_remaining=self.check_quota().remaining
        )

    def get_pricing(self, model_id: str) -> ModelPricing:
        """Return the (zero) price of a model.

        Args:
            model_id: Bare or dotted model ID.

        Returns:
            All-zero pricing.

        Raises:
            UnknownModelError: if the model is not served here.
        """
        self.get_model_info(model_id)
        return ModelPricing(input_per_1k_tokens=0.0, output_per_1k_tokens=0.0, per_request=0.0)

    def report_usage(self, model_id: str, usage: TokenUsage) -> None:
        """Add *usage* to the totals behind :meth:`check_quota` and :attr:`usage_by_model`.

        :meth:`complete` and :meth:`stream` call this themselves, as ModelMesh's CDK
        providers do; ModelMesh's router does not call it.

        Args:
            model_id: The model the tokens were spent on.
            usage: Tokens spent by one request.
        """
        with self._lock:
            self._tokens_used += usage.total_tokens
            total = self._usage_by_model.setdefault(model_id, TokenUsage())
            total.prompt_tokens += usage.prompt_tokens
            total.completion_tokens += usage.completion_tokens
            total.total_tokens += usage.total_tokens

    def classify_error(self, error: Exception) -> ErrorClassification:
        """Classify an error for ModelMesh's retry and rotation decisions.

        Args:
            error: Any exception raised while serving a request.

        Returns:
            ``client``/404 for unknown models and ``rate_limit``/429 for an exhausted
            quota (neither retryable: retrying cannot help); for foreign errors with an
            HTTP status, 429 and 5xx are retryable, 401/403 are ``auth``, other 4xx are
            ``client``; timeouts and connection errors are retryable ``network``
            errors; anything else is ``unknown`` and not retryable.
        """
        message = str(error)
        if isinstance(error, UnknownModelError):
            return ErrorClassification(False, 404, message, "client")
        if isinstance(error, QuotaExceededError):
            return ErrorClassification(False, 429, message, "rate_limit")
        status = _status_code(error)
        if status is not None:
            if status == 429:
                return ErrorClassification(True, status, message, "rate_limit")
            if status in (401, 403):
                return ErrorClassification(False, status, message, "auth")
            if status >= 500:
                return ErrorClassification(True, status, message, "server")
            if status >= 400:
                return ErrorClassification(False, status, message, "client")
            return ErrorClassification(False, status, message, "unknown")
        if isinstance(error, TimeoutError | ConnectionError):
            return ErrorClassification(True, None, message, "network")
        return ErrorClassification(False, None, message, "unknown")

    # -- Internals ---------------------------------------------------------------

    def _answer(self, request: CompletionRequest) -> tuple[ModelInfo, str, str, TokenUsage]:
        info = self.get_model_info(request.model)
        limit = self._config.quota_tokens
        if limit is not None:
            used = self.check_quota().used
            if used >= limit:
                raise QuotaExceededError(
                    f"echo provider token quota exhausted: used {used} of {limit} tokens"
                )
        prompt = _last_user_text(request.messages)
        answer = self._config.answers.get(prompt, self._config.prefix + prompt)
        max_tokens = info.max_output_tokens
        if request.max_tokens is not None:
            max_tokens = min(max_tokens, max(request.max_tokens, 0))
        answer, finish_reason = _apply_limits(answer, request.stop, max_tokens)
        prompt_tokens = _prompt_tokens(request.messages)
        completion_tokens = _count_tokens(answer)
        usage = TokenUsage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)
        return info, answer, finish_reason, usage

    def _next_id(self) -> str:
        with self._lock:
            self._responses += 1
            return f"chatcmpl-echo-{self._responses:06d}"
