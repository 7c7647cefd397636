"""Signet SDK for Python: the ``signet.task.v1`` envelope, its signatures
(HMAC-SHA256, Ed25519) and the keys, loaded from the same ``SIGNET_SIGNING_*``
variables and key file as the Rust side.

Modules: ``envelope`` (fields and canonical bytes), ``sign`` (sign and
verify), ``keys`` (keys and the ring), ``config`` (the variables),
``loader`` (where keys come from), ``errors``; and over HTTP: ``client``,
``producer`` (sign and enqueue), ``messages`` (publish webhooks the
server signs and delivers), ``worker`` (pull, verify, run), ``push``
(push endpoints, WSGI/ASGI), ``webhooks`` (Standard Webhooks receiving).
"""

__version__ = "0.1.0"

from .config import SigningConfig, unknown_variables
from .envelope import (
    ENVELOPE_TAG,
    SIGNATURE_HEADER,
    SIGNATURE_KEY_HEADER,
    TaskEnvelope,
    normalise_headers,
)
from .errors import (
    AlgorithmMismatch,
    ConfigError,
    MalformedSignature,
    MissingSignature,
    SignatureMismatch,
    SignetError,
    UnknownKey,
    UnsupportedError,
    VerificationError,
)
from .keys import Algorithm, Key, KeyRing
from .loader import LoadedKeys, key_file_beside, load_keys, parse_key_file
from .sign import EnvelopeSignature, sign_envelope, verify_envelope, verify_envelope_headers
from .client import ApiError, Client, TransportError
from .tasks import Handlers, Retry, Task
from .producer import BatchEnqueueError, Producer, TaskRequest
from .messages import BatchPublishError, MessagePublisher, MessageRequest
from .worker import Worker
from .push import PushEndpoint, PushResponse, asgi_app, handle_push, wsgi_app
from .webhooks import WebhookError, WebhookVerified, sign_webhook, verify_webhook

__all__ = [
    "ApiError",
    "BatchEnqueueError",
    "BatchPublishError",
    "Client",
    "Handlers",
    "MessagePublisher",
    "MessageRequest",
    "Producer",
    "PushEndpoint",
    "PushResponse",
    "Retry",
    "Task",
    "TaskRequest",
    "TransportError",
    "WebhookError",
    "WebhookVerified",
    "Worker",
    "asgi_app",
    "handle_push",
    "sign_webhook",
    "verify_webhook",
    "wsgi_app",
    "ENVELOPE_TAG",
    "SIGNATURE_HEADER",
    "SIGNATURE_KEY_HEADER",
    "Algorithm",
    "AlgorithmMismatch",
    "ConfigError",
    "EnvelopeSignature",
    "Key",
    "KeyRing",
    "LoadedKeys",
    "MalformedSignature",
    "MissingSignature",
    "SignatureMismatch",
    "SignetError",
    "SigningConfig",
    "TaskEnvelope",
    "UnknownKey",
    "UnsupportedError",
    "VerificationError",
    "key_file_beside",
    "load_keys",
    "normalise_headers",
    "parse_key_file",
    "sign_envelope",
    "unknown_variables",
    "verify_envelope",
    "verify_envelope_headers",
]
