"""Webhook delivery for budget alerts: Standard Webhooks signing, at-least-once delivery with
backoff, and the dispatcher that turns `tollway.budget-alerts.v1` messages into deliveries.

Modules: `signing` (secrets and headers), `delivery` (one payload to one endpoint, retried and
recorded in `webhook_deliveries`), `dispatcher` (alerts to subscribed endpoints, idempotent by
`webhook-id`, and the Faust agent), `admin_api` (`POST /v1/admin/webhooks/{id}/test`).
"""
