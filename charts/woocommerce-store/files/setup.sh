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
# The administrator password never reaches the log: it goes to `wp core install` through
# stdin, and that command's output (wp-cli echoes a prompted value back) is never printed.
#
# Environment: STORE_URL STORE_TITLE ADMIN_USER ADMIN_EMAIL ADMIN_PASSWORD
#   STORE_CURRENCY STORE_COUNTRY STORE_ADDRESS STORE_CITY STORE_POSTCODE
#   WOOCOMMERCE_VERSION STOREFRONT_VERSION SAMPLE_PRODUCTS_FILE
#   WEBHOOK_DELIVERY_URL (empty: no webhooks) WEBHOOK_SECRET WEBHOOK_TOPICS
#   (with webhooks, HELPERS/urumi-webhooks.php is the must-use plugin to install)
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

# wp-cli on the shared document root, with enough memory to unpack WooCommerce. Every call
# names the store URL (--url, a wp-cli global parameter): without it WordPress has no
# HTTP_HOST and warns, and URL-dependent code sees the wrong site.
wp() {
  php -d memory_limit="$PHP_MEMORY_LIMIT" "$WP_CLI_PHAR" --path="$WP_PATH" --url="$STORE_URL" --no-color "$@"
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

# install_extension plugin|theme SLUG VERSION TITLE [--force]: downloads VERSION from
# wordpress.org; a version that does not exist (or a download that fails) stops the Job
# with a message naming what and which version.
install_extension() {
  kind=$1 slug=$2 version=$3 title=$4
  shift 4
  if ! out=$(wp "$kind" install "$slug" --version="$version" "$@" 2>&1); then
    printf '%s\n' "$out" | tail -5 >&2
    die "$title $version could not be installed (wp $kind install $slug --version=$version failed: is $version published on wordpress.org, and can this pod reach downloads.wordpress.org?)"
  fi
  printf '%s\n' "$out"
}

# ensure_extension plugin|theme SLUG VERSION TITLE: installed at VERSION (or newer) and active.
ensure_extension() {
  kind=$1 slug=$2 version=$3 title=$4
  if wp "$kind" is-installed "$slug"; then
    have=$(wp "$kind" get "$slug" --field=version)
    if older_than "$have" "$version"; then
      log "$kind $slug: upgrading $have -> $version"
      install_extension "$kind" "$slug" "$version" "$title" --force
    else
      log "$kind $slug: $have installed"
    fi
  else
    log "$kind $slug: installing $version"
    install_extension "$kind" "$slug" "$version" "$title"
  fi
  if ! wp "$kind" is-active "$slug"; then
    log "$kind $slug: activating"
    wp "$kind" activate "$slug"
  fi
}

set_option() { # set_option NAME VALUE [--format=json]: `wp option update` is a no-op when equal
  wp option update "$@" >/dev/null
}

option_value() { # option_value NAME: the option's value, empty when it does not exist
  wp option get "$1" 2>/dev/null || true
}

log "store $STORE_URL"
wait_for "WordPress files and wp-config.php" wordpress_files_ready
wait_for "database $WORDPRESS_DB_HOST" database_ready

# ---- WordPress ---------------------------------------------------------------------------
if wp core is-installed; then
  log "WordPress: already installed ($(wp core version))"
else
  log "WordPress: installing $(wp core version)"
  # The password goes through stdin, never through the command line. wp-cli then prints
  # the whole resulting command, password included, on stdout: its output is kept out of
  # the log, and on failure only its lines that do not contain the password are shown.
  if ! out=$(printf '%s\n' "$ADMIN_PASSWORD" | wp core install --url="$STORE_URL" \
    --title="$STORE_TITLE" --admin_user="$ADMIN_USER" --admin_email="$ADMIN_EMAIL" \
    --skip-email --prompt=admin_password 2>&1); then
    # awk reads the password from its environment: it is never on a command line.
    # shellcheck disable=SC2016 # awk code, not shell
    printf '%s\n' "$out" | awk 'index($0, ENVIRON["ADMIN_PASSWORD"]) == 0' | tail -5 >&2
    die "wp core install failed (its output is not shown where it would contain the password)"
  fi
  unset out
  log "WordPress: installed, administrator $ADMIN_USER"
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
ensure_extension plugin woocommerce "$WOOCOMMERCE_VERSION" WooCommerce
ensure_extension theme storefront "$STOREFRONT_VERSION" Storefront
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
# woocommerce_task_list_hidden and woocommerce_extended_task_list_hidden are deprecated
# shims whose update hides the lists and then reports failure (exit 1): never use them.
set_option woocommerce_task_list_hidden_lists '["setup","extended"]' --format=json
set_option woocommerce_task_list_welcome_modal_dismissed yes

# Orders in WooCommerce's own tables (HPOS), decided here rather than left to the first
# admin page view (WooCommerce switches HPOS on then only if no order exists yet).
# `wp wc hpos enable` (WooCommerce >= 8.9) runs the pre-checks and creates the tables on a
# new shop; compatibility mode (syncing every order to the posts tables too) stays off.
if [ "$(option_value woocommerce_custom_orders_table_enabled)" != yes ]; then
  log "WooCommerce: order storage HPOS (custom order tables)"
  wp wc hpos enable || die "WooCommerce could not switch orders to HPOS (wp wc hpos enable failed; see above)"
fi
if [ "$(option_value woocommerce_custom_orders_table_data_sync_enabled)" != no ]; then
  log "WooCommerce: HPOS compatibility mode (sync to posts) off"
  set_option woocommerce_custom_orders_table_data_sync_enabled no
fi

log "WooCommerce: Cash on Delivery (also for virtual products)"
set_option woocommerce_cod_settings --format=json \
  '{"enabled":"yes","title":"Cash on delivery","description":"Pay with cash upon delivery.","instructions":"Pay with cash upon delivery.","enable_for_methods":[],"enable_for_virtual":"yes"}'

if [ -n "${SAMPLE_PRODUCTS_FILE:-}" ] && [ -s "$SAMPLE_PRODUCTS_FILE" ]; then
  log "WooCommerce: sample products"
  wp eval-file "$HELPERS/products.php"
fi

# WooCommerce delivers webhooks with wp_safe_remote_request, which refuses private and
# loopback addresses and ports other than 80/443/8080 (an in-cluster platform is all of
# those). The must-use plugin rendered by the chart allows exactly the platform's host and
# port; webhook-url.php then asks WordPress itself, plugin loaded, whether it will deliver.
MU_PLUGIN=$WP_PATH/wp-content/mu-plugins/urumi-webhooks.php
if [ -n "${WEBHOOK_DELIVERY_URL:-}" ]; then
  [ -n "${WEBHOOK_SECRET:-}" ] || die "webhooks.url is set but the Secret has no webhook-secret"
  [ -s "$HELPERS/urumi-webhooks.php" ] || die "webhooks.url is set but $HELPERS/urumi-webhooks.php is missing"
  if ! cmp -s "$HELPERS/urumi-webhooks.php" "$MU_PLUGIN"; then
    log "WordPress: must-use plugin urumi-webhooks.php (webhook delivery to the platform)"
    mkdir -p "$(dirname "$MU_PLUGIN")"
    cp "$HELPERS/urumi-webhooks.php" "$MU_PLUGIN.tmp" && mv "$MU_PLUGIN.tmp" "$MU_PLUGIN"
  fi
  wp eval-file "$HELPERS/webhook-url.php" ||
    die "WooCommerce would refuse to deliver webhooks to $WEBHOOK_DELIVERY_URL (see above)"
  log "WooCommerce: webhooks to $WEBHOOK_DELIVERY_URL"
  wp eval-file "$HELPERS/webhooks.php"
elif [ -e "$MU_PLUGIN" ]; then
  log "WordPress: webhooks are off, removing must-use plugin urumi-webhooks.php"
  rm -f "$MU_PLUGIN"
fi

wp rewrite flush >/dev/null
wp cache flush >/dev/null 2>&1 || true
log "done: $STORE_URL is open for orders (Cash on Delivery)"
