#!/bin/sh
# Sets up one WooCommerce store with wp-cli, run by the chart's setup Job.
#
# Idempotent: every step looks at the current state first, so a retried or re-run Job
# (each `helm upgrade` runs a new one) resumes where the last one stopped and changes
# nothing that is already right. Progress goes to stdout, the reason of a failure to
# stderr as the last line (the provisioner shows the log tail of a failed Job).
#
# Shares the WordPress volume (WP_PATH) and reads the database settings the same way
# WordPress does: wp-config.php (written by the wordpress image) takes them from the
# WORDPRESS_DB_* environment variables.
#
# Environment: STORE_URL STORE_TITLE ADMIN_USER ADMIN_EMAIL ADMIN_PASSWORD
#   STORE_CURRENCY STORE_COUNTRY STORE_ADDRESS STORE_CITY STORE_POSTCODE
#   WOOCOMMERCE_VERSION STOREFRONT_VERSION SAMPLE_PRODUCTS_FILE
#   WEBHOOK_DELIVERY_URL (empty: no webhooks) WEBHOOK_SECRET WEBHOOK_TOPICS
#   WORDPRESS_DB_HOST WORDPRESS_DB_NAME WORDPRESS_DB_USER WORDPRESS_DB_PASSWORD
#   WAIT_SECONDS (default 600) PHP_MEMORY_LIMIT (default 256M) WP_CLI_PHAR
set -eu

WP_PATH=${WP_PATH:-/var/www/html}
HELPERS=${HELPERS:-/opt/urumi}
WAIT_SECONDS=${WAIT_SECONDS:-600}
PHP_MEMORY_LIMIT=${PHP_MEMORY_LIMIT:-256M}
WP_CLI_PHAR=${WP_CLI_PHAR:-/usr/local/bin/wp}

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

for var in STORE_URL STORE_TITLE ADMIN_USER ADMIN_EMAIL ADMIN_PASSWORD \
  WOOCOMMERCE_VERSION STOREFRONT_VERSION WORDPRESS_DB_HOST WORDPRESS_DB_NAME \
  WORDPRESS_DB_USER WORDPRESS_DB_PASSWORD; do
  eval "value=\${$var:-}"
  # shellcheck disable=SC2154 # assigned by the eval above
  [ -n "$value" ] || die "$var is not set"
done

# wp-cli on the shared document root, with enough memory to unpack WooCommerce.
wp() {
  php -d memory_limit="$PHP_MEMORY_LIMIT" "$WP_CLI_PHAR" --path="$WP_PATH" --no-color "$@"
}

wait_for() { # wait_for DESCRIPTION CMD...: retries CMD every 3s for WAIT_SECONDS
  what=$1
  shift
  waited=0
  until "$@" >/dev/null 2>&1; do
    if [ "$waited" -ge "$WAIT_SECONDS" ]; then
      die "gave up waiting for $what after ${WAIT_SECONDS}s"
    fi
    sleep 3
    waited=$((waited + 3))
  done
  log "$what: ok after ${waited}s"
}

# The wordpress image copies its files, then writes wp-config.php; its last line loads
# wp-settings.php, so a half-written file does not count.
wordpress_files_ready() {
  [ -s "$WP_PATH/wp-includes/version.php" ] && grep -q "wp-settings.php" "$WP_PATH/wp-config.php"
}

# Connects with the credentials wp-config.php uses; the password stays in the environment.
database_ready() {
  php "$HELPERS/db-ready.php"
}

# Older than WANT? version_compare knows WordPress' version strings.
older_than() { # older_than HAVE WANT
  # shellcheck disable=SC2016 # PHP code: $argv is PHP's, not the shell's
  php -r 'exit(version_compare($argv[1], $argv[2], "<") ? 0 : 1);' "$1" "$2"
}

# ensure_extension plugin|theme SLUG VERSION: installed at VERSION (or newer) and active.
ensure_extension() {
  kind=$1 slug=$2 version=$3
  if wp "$kind" is-installed "$slug"; then
    have=$(wp "$kind" get "$slug" --field=version)
    if older_than "$have" "$version"; then
      log "$kind $slug: upgrading $have -> $version"
      wp "$kind" install "$slug" --version="$version" --force
    else
      log "$kind $slug: $have installed"
    fi
  else
    log "$kind $slug: installing $version"
    wp "$kind" install "$slug" --version="$version"
  fi
  if ! wp "$kind" is-active "$slug"; then
    log "$kind $slug: activating"
    wp "$kind" activate "$slug"
  fi
}

set_option() { # set_option NAME VALUE [--format=json]: `wp option update` is a no-op when equal
  wp option update "$@" >/dev/null
}

log "store $STORE_URL"
wait_for "WordPress files and wp-config.php" wordpress_files_ready
wait_for "database $WORDPRESS_DB_HOST" database_ready

# ---- WordPress ---------------------------------------------------------------------------
if wp core is-installed; then
  log "WordPress: already installed ($(wp core version))"
else
  log "WordPress: installing $(wp core version)"
  # The password goes through stdin, never through the command line.
  printf '%s\n' "$ADMIN_PASSWORD" | wp core install --url="$STORE_URL" \
    --title="$STORE_TITLE" --admin_user="$ADMIN_USER" --admin_email="$ADMIN_EMAIL" \
    --skip-email --prompt=admin_password
fi

# home and siteurl must be the ingress URL, or WordPress redirects elsewhere.
for option in home siteurl; do
  if [ "$(wp option get "$option")" != "$STORE_URL" ]; then
    log "WordPress: $option -> $STORE_URL"
    set_option "$option" "$STORE_URL"
  fi
done
if [ "$(wp option get blogname)" != "$STORE_TITLE" ]; then
  set_option blogname "$STORE_TITLE"
fi

# Pretty permalinks (the Store API and product URLs read better); Apache needs the rules.
if [ "$(wp option get permalink_structure)" != "/%postname%/" ]; then
  log "WordPress: permalinks /%postname%/"
  wp rewrite structure '/%postname%/'
fi
if ! grep -q '# BEGIN WordPress' "$WP_PATH/.htaccess" 2>/dev/null; then
  log "WordPress: writing .htaccess rewrite rules"
  cat >> "$WP_PATH/.htaccess" <<'HTACCESS'
# BEGIN WordPress
<IfModule mod_rewrite.c>
RewriteEngine On
RewriteRule .* - [E=HTTP_AUTHORIZATION:%{HTTP:Authorization}]
RewriteBase /
RewriteRule ^index\.php$ - [L]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule . /index.php [L]
</IfModule>
# END WordPress
HTACCESS
fi

# ---- WooCommerce and Storefront ----------------------------------------------------------
ensure_extension plugin woocommerce "$WOOCOMMERCE_VERSION"
ensure_extension theme storefront "$STOREFRONT_VERSION"
log "WooCommerce: database updates"
wp wc update
log "WooCommerce: pages (shop, cart, checkout, my account)"
wp wc tool run install_pages --user="$ADMIN_USER" >/dev/null

log "WooCommerce: store settings"
set_option woocommerce_currency "${STORE_CURRENCY:-USD}"
set_option woocommerce_default_country "${STORE_COUNTRY:-US:CA}"
set_option woocommerce_store_address "${STORE_ADDRESS:-}"
set_option woocommerce_store_city "${STORE_CITY:-}"
set_option woocommerce_store_postcode "${STORE_POSTCODE:-}"
# Visible store: "coming soon" mode hides shop and cart from shoppers.
set_option woocommerce_coming_soon no
set_option woocommerce_store_pages_only no
# Sample products are virtual: no shipping zone needed, none asked for.
set_option woocommerce_ship_to_countries disabled
set_option woocommerce_calc_taxes no
set_option woocommerce_enable_guest_checkout yes
set_option woocommerce_allow_tracking no
set_option woocommerce_show_marketplace_suggestions no
# No onboarding wizard, no task list.
set_option woocommerce_onboarding_profile '{"skipped":true}' --format=json
set_option woocommerce_task_list_hidden yes
set_option woocommerce_extended_task_list_hidden yes
set_option woocommerce_task_list_welcome_modal_dismissed yes

log "WooCommerce: Cash on Delivery (also for virtual products)"
set_option woocommerce_cod_settings --format=json \
  '{"enabled":"yes","title":"Cash on delivery","description":"Pay with cash upon delivery.","instructions":"Pay with cash upon delivery.","enable_for_methods":[],"enable_for_virtual":"yes"}'

if [ -n "${SAMPLE_PRODUCTS_FILE:-}" ] && [ -s "$SAMPLE_PRODUCTS_FILE" ]; then
  log "WooCommerce: sample products"
  wp eval-file "$HELPERS/products.php"
fi

if [ -n "${WEBHOOK_DELIVERY_URL:-}" ]; then
  [ -n "${WEBHOOK_SECRET:-}" ] || die "webhooks.url is set but the Secret has no webhook-secret"
  log "WooCommerce: webhooks to $WEBHOOK_DELIVERY_URL"
  wp eval-file "$HELPERS/webhooks.php"
fi

wp rewrite flush >/dev/null
wp cache flush >/dev/null 2>&1 || true
log "done: $STORE_URL is open for orders (Cash on Delivery)"
