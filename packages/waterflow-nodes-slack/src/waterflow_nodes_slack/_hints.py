"""What Slack's error codes mean and what to do about them, for one-line step errors."""

from __future__ import annotations

# Incoming webhooks answer 4xx with a plain-text code.
WEBHOOK_HINTS: dict[str, str] = {
    "invalid_payload": "Slack could not read the message; check blocks and attachments "
    "(Block Kit Builder shows what is wrong) or the payload",
    "no_text": "the message is empty; give message, blocks or attachments",
    "invalid_blocks": "Slack rejected the blocks; check them in Block Kit Builder",
    "invalid_blocks_format": "blocks must be a list of block objects",
    "invalid_attachments": "Slack rejected the attachments; check their fields",
    "too_many_attachments": "a message takes at most 100 attachments",
    "user_not_found": "the user the webhook posts to no longer exists",
    "channel_not_found": "the webhook's channel no longer exists; create a webhook for "
    "another channel and update the secret",
    "channel_is_archived": "the webhook's channel is archived; unarchive it or create a "
    "webhook for another channel",
    "action_prohibited": "a workspace admin restricts posting to that channel",
    "posting_to_general_channel_denied": "only admins may post to the workspace's general "
    "channel; use a webhook for another channel",
    "no_service": "the webhook was removed or its app disabled; create a new webhook and "
    "update the secret",
    "no_service_id": "the webhook URL is incomplete; copy it again from the app's Incoming "
    "Webhooks page into the secret",
    "no_team": "the webhook's workspace does not exist; copy the URL again into the secret",
    "team_disabled": "the webhook's workspace is disabled",
    "invalid_token": "the webhook URL is not valid; copy it again into the secret",
}

# Web API methods answer HTTP 200 with {"ok": false, "error": code}.
API_HINTS: dict[str, str] = {
    "channel_not_found": "the channel does not exist or the bot cannot see it; use the "
    "channel's ID (C0123…) and invite the bot to the channel (/invite @your-bot)",
    "not_in_channel": "the bot is not in the channel; invite it (/invite @your-bot)",
    "is_archived": "the channel is archived",
    "invalid_auth": "the token is not valid; check the secret holds a bot token (xoxb-…) of "
    "this workspace",
    "not_authed": "no token reached Slack; check the token parameter and any proxy in between",
    "token_revoked": "the token was revoked; reinstall the app and update the secret",
    "token_expired": "the token expired; refresh it and update the secret",
    "account_inactive": "the token belongs to a deleted user or a disabled app",
    "missing_scope": "the token lacks a scope; add chat:write to the app and reinstall it",
    "no_permission": "the token may not do this in this workspace",
    "restricted_action": "a workspace setting prevents the bot from posting in this channel",
    "restricted_action_read_only_channel": "the channel is read-only",
    "restricted_action_thread_only_channel": "the channel takes replies in threads only; "
    "give thread_ts",
    "restricted_action_non_threadable_channel": "the channel does not take thread replies",
    "msg_too_long": "the text is too long; Slack takes at most 40,000 characters",
    "msg_blocks_too_long": "the blocks are too long; Slack takes at most 50 blocks",
    "no_text": "the message is empty; give text or blocks",
    "invalid_blocks": "Slack rejected the blocks; check them in Block Kit Builder",
    "invalid_blocks_format": "blocks must be a list of block objects",
    "too_many_attachments": "a message takes at most 100 attachments",
    "thread_not_found": "no message with that thread_ts in this channel",
    "message_not_found": "no message with that update_ts in this channel; update_ts must "
    "be the ts a slack/post step put out, and channel its channel ID",
    "cant_update_message": "a bot can update only its own messages",
    "edit_window_closed": "the message is too old to edit",
    "invalid_arguments": "Slack rejected the arguments",
    "team_access_not_granted": "the token has no access to this workspace",
    "ekm_access_denied": "an administrator suspended posting (Enterprise Key Management)",
}

# Web API errors that say "Slack had a problem, try again".
API_TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
