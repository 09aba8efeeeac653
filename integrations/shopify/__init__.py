"""Shopify: webhook verification, payload → order model, and the platform adapter."""
