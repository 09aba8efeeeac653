"""WooCommerce: webhooks in, REST v3 client, orders, tracking, stock and the connect flow."""
