"""The one notification service: an outbox written with the event, templates, SMTP delivery."""
