<?php
// Run by setup.sh with `wp eval-file`: creates each sample product of
// SAMPLE_PRODUCTS_FILE (lines "SKU|PRICE|NAME") unless a product with its SKU exists.
// Products are virtual (no shipping), published and in stock.
$file = getenv('SAMPLE_PRODUCTS_FILE');
$lines = $file ? file($file, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES) : [];
foreach ($lines as $line) {
    [$sku, $price, $name] = array_map('trim', array_pad(explode('|', $line, 3), 3, ''));
    if ($sku === '' || $name === '') {
        continue;
    }
    $existing = wc_get_product_id_by_sku($sku);
    if ($existing) {
        WP_CLI::log("product $sku: exists (#$existing)");
        continue;
    }
    $product = new WC_Product_Simple();
    $product->set_name($name);
    $product->set_sku($sku);
    $product->set_regular_price($price);
    $product->set_virtual(true);
    $product->set_status('publish');
    $product->set_catalog_visibility('visible');
    $product->set_stock_status('instock');
    $id = $product->save();
    WP_CLI::log("product $sku: created (#$id)");
}
