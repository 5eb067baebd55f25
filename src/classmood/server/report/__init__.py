"""The session report as a PDF: summary, topic table, charts and alerts, from the same figures as the API."""
