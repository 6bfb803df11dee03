<?php
// Run by setup.sh with `wp eval-file`: one active WooCommerce webhook per topic of
// WEBHOOK_TOPICS (comma separated) delivering to WEBHOOK_DELIVERY_URL, signed with
// WEBHOOK_SECRET. A webhook with that topic and URL that exists is kept (its secret and
// status corrected if they differ): re-running creates no duplicates.
// Saved directly (no ping): the platform need not be reachable at setup time.
$url = getenv('WEBHOOK_DELIVERY_URL');
$secret = getenv('WEBHOOK_SECRET');
$topics = array_filter(array_map('trim', explode(',', (string) getenv('WEBHOOK_TOPICS'))));
$admin = get_user_by('login', getenv('ADMIN_USER'));
if (!$admin) {
    WP_CLI::error('administrator ' . getenv('ADMIN_USER') . ' not found');
}

$existing = [];
$store = WC_Data_Store::load('webhook');
foreach ($store->search_webhooks(['limit' => -1]) as $id) {
    $hook = wc_get_webhook($id);
    if ($hook && $hook->get_delivery_url() === $url) {
        $existing[$hook->get_topic()] = $hook;
    }
}

foreach ($topics as $topic) {
    if (isset($existing[$topic])) {
        $hook = $existing[$topic];
        if ($hook->get_secret() === $secret && $hook->get_status() === 'active') {
            WP_CLI::log("webhook $topic: exists (#{$hook->get_id()})");
            continue;
        }
        $hook->set_secret($secret);
        $hook->set_status('active');
        $hook->save();
        WP_CLI::log("webhook $topic: updated (#{$hook->get_id()})");
        continue;
    }
    $hook = new WC_Webhook();
    $hook->set_name("Urumi $topic");
    $hook->set_user_id($admin->ID);
    $hook->set_topic($topic);
    $hook->set_delivery_url($url);
    $hook->set_secret($secret);
    $hook->set_status('active');
    $hook->set_api_version('wp_api_v3');
    $hook->save();
    WP_CLI::log("webhook $topic: created (#{$hook->get_id()})");
}
