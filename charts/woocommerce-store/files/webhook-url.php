<?php
// Run by setup.sh with `wp eval-file`, so WordPress is loaded with its must-use plugins
// (urumi-webhooks.php among them): fails unless WordPress' own URL check, the one
// wp_safe_remote_request applies to every WooCommerce webhook delivery, accepts
// WEBHOOK_DELIVERY_URL. Without this a refused URL fails silently at every delivery.
$url = (string) getenv('WEBHOOK_DELIVERY_URL');
if (wp_http_validate_url($url) === false) {
    $host = (string) wp_parse_url($url, PHP_URL_HOST);
    WP_CLI::error(
        "WooCommerce cannot deliver webhooks to $url: wp_http_validate_url() refuses it. "
        . "Does $host resolve from this pod, and is wp-content/mu-plugins/urumi-webhooks.php "
        . 'installed and allowing exactly this host and port?'
    );
}
WP_CLI::log("webhook URL $url: WordPress will deliver to it");
