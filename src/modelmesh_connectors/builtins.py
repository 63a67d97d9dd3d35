"""ModelMesh's built-in connectors, as a static table so that nothing is imported eagerly.

Upstream's ``modelmesh.connectors.CONNECTOR_REGISTRY`` imports all of its connector modules
(~150-200 ms). This table names each one's module, class, type and description instead; the
class is imported on first :meth:`~modelmesh_connectors.ConnectorRegistry.get_connector`.
A test compares the table with the live upstream registry, so it cannot drift silently.
Types are explicit because some upstream classes (the rotation policy) subclass no interface.
"""

from __future__ import annotations

import importlib

from modelmesh_connectors.package.connector_types import ConnectorType as _T

__all__ = ["BUILTINS", "Builtin"]

_PACKAGE = "modelmesh.connectors."


class Builtin:
    """One built-in connector (immutable).

    A plain class rather than a dataclass: this table is built on every ``ConnectorRegistry()``
    and ``dataclasses`` (with ``inspect``) would cost every ModelMesh start-up ~8 ms.

    Attributes:
        id: Connector ID.
        module: Module under ``modelmesh.connectors``.
        attribute: Class name in that module.
        connector_type: Its connector type.
        description: First line of the class docstring.
    """

    __slots__ = ("attribute", "connector_type", "description", "id", "module")

    id: str
    module: str
    attribute: str
    connector_type: _T
    description: str

    def __init__(
        self, id: str, module: str, attribute: str, connector_type: _T, description: str
    ) -> None:
        for name, value in zip(
            self.__slots__,
            (attribute, connector_type, description, id, module),
            strict=True,
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Builtin is immutable: cannot set {name!r}")

    def _key(self) -> tuple[str, str, str, _T, str]:
        return (self.id, self.module, self.attribute, self.connector_type, self.description)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Builtin) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Builtin(id={self.id!r}, module={self.module!r}, attribute={self.attribute!r}, "
            f"connector_type={self.connector_type!r}, description={self.description!r})"
        )

    def load(self) -> type:
        """Import and return the implementation class."""
        cls: type = getattr(importlib.import_module(_PACKAGE + self.module), self.attribute)
        return cls


_B = Builtin

# fmt: off
BUILTINS: tuple[Builtin, ...] = (
    _B("anthropic.claude.v1", "providers.anthropic_provider", "AnthropicProvider", _T.PROVIDER, 'Pre-shipped provider connector for the Anthropic Messages API.'),
    _B("assemblyai.stt.v1", "providers.assemblyai_provider", "AssemblyAIProvider", _T.PROVIDER, "Pre-shipped provider connector for AssemblyAI's transcription API."),
    _B("azure.tts.v1", "providers.azure_speech_provider", "AzureSpeechProvider", _T.PROVIDER, 'Pre-shipped provider connector for the Azure Speech TTS API.'),
    _B("cohere.nlp.v1", "providers.cohere_provider", "CohereProvider", _T.PROVIDER, 'Pre-shipped provider connector for the Cohere v2 Chat API.'),
    _B("deepseek.api.v1", "providers.deepseek_provider", "DeepSeekProvider", _T.PROVIDER, 'Pre-shipped provider connector for the DeepSeek API.'),
    _B("elevenlabs.tts.v1", "providers.elevenlabs_provider", "ElevenLabsProvider", _T.PROVIDER, 'Pre-shipped provider connector for the ElevenLabs TTS API.'),
    _B("firecrawl.scrape.v1", "providers.firecrawl_provider", "FirecrawlProvider", _T.PROVIDER, 'Pre-shipped provider connector for the Firecrawl API.'),
    _B("google.gemini.v1", "providers.gemini_provider", "GeminiProvider", _T.PROVIDER, 'Pre-shipped provider connector for the Google Generative Language API.'),
    _B("groq.api.v1", "providers.groq_provider", "GroqProvider", _T.PROVIDER, 'Pre-shipped provider connector for the Groq API.'),
    _B("jina.ai.v1", "providers.jina_provider", "JinaProvider", _T.PROVIDER, 'Pre-shipped provider connector for Jina AI services.'),
    _B("lmstudio.local.v1", "providers.lmstudio_provider", "LMStudioProvider", _T.PROVIDER, 'Pre-shipped provider connector for LM Studio.'),
    _B("localai.local.v1", "providers.localai_provider", "LocalAIProvider", _T.PROVIDER, 'Pre-shipped provider connector for LocalAI.'),
    _B("mistral.api.v1", "providers.mistral_provider", "MistralProvider", _T.PROVIDER, 'Pre-shipped provider connector for the Mistral AI API.'),
    _B("modelmesh.callback.v1", "observability.callback_connector", "CallbackConnector", _T.OBSERVABILITY, 'Observability connector that delegates to user-provided callables.'),
    _B("modelmesh.console.v1", "observability.console_connector", "ConsoleObservabilityConnector", _T.OBSERVABILITY, 'Pre-shipped observability connector with colored console output.'),
    _B("modelmesh.dotenv.v1", "secret_stores.dotenv_store", "DotenvSecretStore", _T.SECRET_STORE, 'Secret store that resolves values from a ``.env`` file.'),
    _B("modelmesh.encrypted-file.v1", "secret_stores.encrypted_file_store", "EncryptedFileSecretStore", _T.SECRET_STORE, 'Secret store backed by an AES-256-GCM encrypted JSON file.'),
    _B("modelmesh.env.v1", "secret_stores.env_store", "EnvSecretStore", _T.SECRET_STORE, 'Secret store that resolves values from environment variables.'),
    _B("modelmesh.file.v1", "observability.file_connector", "FileObservabilityConnector", _T.OBSERVABILITY, 'Pre-shipped observability connector that writes to a log file.'),
    _B("modelmesh.json-log.v1", "observability.json_log_connector", "JsonLogConnector", _T.OBSERVABILITY, 'Observability connector that writes JSON Lines to a file.'),
    _B("modelmesh.json-secrets.v1", "secret_stores.json_store", "JsonSecretStore", _T.SECRET_STORE, 'Secret store that resolves values from a JSON file.'),
    _B("modelmesh.keyring.v1", "secret_stores.keyring_store", "KeyringSecretStore", _T.SECRET_STORE, "Secret store backed by the operating system's keychain."),
    _B("modelmesh.local-file.v1", "storage.local_file", "LocalFileStorage", _T.STORAGE, 'Pre-shipped storage connector using a local JSON file.'),
    _B("modelmesh.memory-secrets.v1", "secret_stores.memory_store", "MemorySecretStore", _T.SECRET_STORE, 'Secret store backed entirely by an in-memory dictionary.'),
    _B("modelmesh.memory.v1", "storage.memory_storage", "MemoryStorage", _T.STORAGE, 'Ephemeral in-memory key-value storage.'),
    _B("modelmesh.null.v1", "observability.null_connector", "NullObservabilityConnector", _T.OBSERVABILITY, 'No-op observability connector.'),
    _B("modelmesh.sqlite.v1", "storage.sqlite_storage", "SqliteStorage", _T.STORAGE, 'Key-value storage backed by a local SQLite database.'),
    _B("modelmesh.stick-until-failure.v1", "rotation.stick_until_failure", "StickUntilFailurePolicy", _T.ROTATION, 'Stick-until-failure rotation policy bundle.'),
    _B("modelmesh.webhook.v1", "observability.webhook_connector", "WebhookConnector", _T.OBSERVABILITY, 'Observability connector that posts data to HTTP webhooks.'),
    _B("ollama.local.v1", "providers.ollama_provider", "OllamaProvider", _T.PROVIDER, 'Pre-shipped provider connector for Ollama.'),
    _B("openai.llm.v1", "providers.openai_provider", "OpenAIProvider", _T.PROVIDER, 'Pre-shipped provider connector for the OpenAI API.'),
    _B("openrouter.gateway.v1", "providers.openrouter_provider", "OpenRouterProvider", _T.PROVIDER, 'Pre-shipped provider connector for the OpenRouter gateway API.'),
    _B("perplexity.search.v1", "providers.perplexity_provider", "PerplexityProvider", _T.PROVIDER, 'Pre-shipped provider connector for the Perplexity Sonar API.'),
    _B("serper.search.v1", "providers.serper_provider", "SerperProvider", _T.PROVIDER, 'Pre-shipped provider connector for the Serper Google Search API.'),
    _B("tavily.search.v1", "providers.tavily_provider", "TavilyProvider", _T.PROVIDER, 'Pre-shipped provider connector for the Tavily Search API.'),
    _B("together.api.v1", "providers.together_provider", "TogetherProvider", _T.PROVIDER, 'Pre-shipped provider connector for the Together AI API.'),
    _B("vllm.local.v1", "providers.vllm_provider", "VLLMProvider", _T.PROVIDER, 'Pre-shipped provider connector for vLLM.'),
    _B("xai.grok.v1", "providers.xai_provider", "XAIProvider", _T.PROVIDER, 'Pre-shipped provider connector for the xAI API.'),
)
# fmt: on
