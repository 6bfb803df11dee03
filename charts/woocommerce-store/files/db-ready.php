<?php
// Exits 0 when the WordPress database accepts the credentials wp-config.php uses
// (WORDPRESS_DB_* from the environment), 1 otherwise. Used by setup.sh.
mysqli_report(MYSQLI_REPORT_OFF);
$host = getenv('WORDPRESS_DB_HOST') ?: 'localhost';
$port = 3306;
if (strpos($host, ':') !== false) {
    [$host, $port] = explode(':', $host, 2);
}
$db = @mysqli_connect(
    $host,
    getenv('WORDPRESS_DB_USER') ?: '',
    getenv('WORDPRESS_DB_PASSWORD') ?: '',
    getenv('WORDPRESS_DB_NAME') ?: '',
    (int) $port
);
exit($db ? 0 : 1);
