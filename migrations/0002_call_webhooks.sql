-- Per-call webhooks: the `webhook_url` of POST /v1/calls becomes a webhook
-- row scoped to that one call, so its deliveries go through the same
-- durable outbox (retries, restarts) as the organization's webhooks.
-- NULL for the organization's own webhooks, which the webhooks API lists.
ALTER TABLE webhooks ADD COLUMN call_id TEXT;
CREATE INDEX webhooks_call ON webhooks (call_id);
