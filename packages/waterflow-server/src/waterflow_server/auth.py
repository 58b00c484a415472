"""Bearer tokens by role: every call is authenticated before it reaches a service.

A call carries `authorization: Bearer <token>` in its metadata. Agent tokens may call only the
agent service (report nodes, heartbeat, push logs); user tokens only the user service (catalog,
validation, runs, logs). A missing or unknown token is refused with UNAUTHENTICATED, a token of
the wrong role with PERMISSION_DENIED, each with a message that says what to do, and each is
logged with the method and the peer (never the token).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

import grpc
from loguru import logger

__all__ = ["AGENT", "USER", "AuthInterceptor", "Tokens", "role_of_method"]

Role = Literal["agent", "user"]
AGENT: Role = "agent"
USER: Role = "user"

_ARTICLE = {AGENT: "an", USER: "a"}
_SERVICE_ROLES: dict[str, Role] = {
    "waterflow.v1.AgentService": AGENT,
    "waterflow.v1.UserService": USER,
}


def role_of_method(method: str) -> Role | None:
    """`/waterflow.v1.UserService/SubmitRun` -> `user`; None for other services."""
    service = method.strip("/").partition("/")[0]
    return _SERVICE_ROLES.get(service)


class Tokens:
    """The accepted tokens of each role, compared in constant time."""

    def __init__(self, agent: Iterable[str], user: Iterable[str]) -> None:
        self._tokens: list[tuple[bytes, Role]] = [(t.encode(), AGENT) for t in agent]
        self._tokens += [(t.encode(), USER) for t in user]

    def role(self, token: str) -> Role | None:
        given = token.encode()
        found: Role | None = None
        for known, role in self._tokens:
            if hmac.compare_digest(known, given):
                found = role
        return found


def _bearer(metadata: Iterable[tuple[str, Any]] | None) -> str | None:
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, token = text.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method
        needed = role_of_method(method)
        token = _bearer(handler_call_details.invocation_metadata)
        refusal: tuple[grpc.StatusCode, str] | None = None
        if needed is None:
            return await continuation(handler_call_details)
        if token is None:
            refusal = (
                grpc.StatusCode.UNAUTHENTICATED,
                "missing token: send 'authorization: Bearer <token>' (waterflow: --token or "
                "WATERFLOW_SERVER_TOKEN; agents: server.token)",
            )
        elif token == "":
            refusal = (
                grpc.StatusCode.UNAUTHENTICATED,
                "malformed authorization metadata: expected 'Bearer <token>'",
            )
        else:
            role = self.tokens.role(token)
            if role is None:
                refusal = (grpc.StatusCode.UNAUTHENTICATED, "invalid token")
            elif role != needed:
                short = method.rpartition("/")[2]
                refusal = (
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{_ARTICLE[role]} {role} token may not call {short}; "
                    f"use {_ARTICLE[needed]} {needed} token",
                )
        handler = await continuation(handler_call_details)
        if refusal is None:
            return handler
        code, message = refusal
        return _refusing(handler, method, code, message)


def _refusing(
    handler: grpc.RpcMethodHandler[Any, Any] | None,
    method: str,
    code: grpc.StatusCode,
    message: str,
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as `handler` that logs the refusal and refuses the call."""

    async def refuse(context: grpc.aio.ServicerContext[Any, Any]) -> None:
        logger.warning(
            "Call refused", method=method, peer=context.peer(), status=code.name, reason=message
        )
        await context.abort(code, message)

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await refuse(context)

    async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await refuse(context)
        yield  # pragma: no cover - abort raises

    request_deserializer = handler.request_deserializer if handler else None
    response_serializer = handler.response_serializer if handler else None
    if handler is not None and handler.response_streaming and not handler.request_streaming:
        return grpc.unary_stream_rpc_method_handler(
            streaming,
            request_deserializer=request_deserializer,
            response_serializer=response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        unary, request_deserializer=request_deserializer, response_serializer=response_serializer
    )
