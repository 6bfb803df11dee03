{{/* The store's name: store.name, or the release name. */}}
{{- define "store.name" -}}
{{- default .Release.Name .Values.store.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object's name: the release name. */}}
{{- define "store.fullname" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "store.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "store.labels" -}}
helm.sh/chart: {{ include "store.chart" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: urumi
urumi.dev/store: {{ include "store.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that never change between chart versions: volumeClaimTemplates of a
     StatefulSet are immutable, so they carry only these. */}}
{{- define "store.stableLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: urumi
urumi.dev/store: {{ include "store.name" . }}
{{- end -}}

{{/* Selector labels of one component: include "store.selectorLabels" (list . "wordpress") */}}
{{- define "store.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "store.secretName" -}}
{{- default (printf "%s-credentials" .Release.Name) .Values.existingSecret -}}
{{- end -}}

{{- define "store.host" -}}
{{- if .Values.ingress.host -}}
{{- .Values.ingress.host -}}
{{- else -}}
{{- printf "%s.%s" (include "store.name" .) (required "baseDomain or ingress.host is required" .Values.baseDomain) -}}
{{- end -}}
{{- end -}}

{{/* The storefront URL WordPress answers at (home and siteurl). */}}
{{- define "store.url" -}}
{{- if .Values.store.url -}}
{{- .Values.store.url | trimSuffix "/" -}}
{{- else -}}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) (include "store.host" .) -}}
{{- end -}}
{{- end -}}

{{- define "store.image" -}}
{{- if not .tag -}}{{- fail (printf "image %s has no tag: pin one" .repository) -}}{{- end -}}
{{- if eq (toString .tag) "latest" -}}{{- fail (printf "image %s: pin a version, not latest" .repository) -}}{{- end -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}

{{- define "store.mariadbHost" -}}
{{- printf "%s-mariadb" (include "store.fullname" .) -}}
{{- end -}}

{{/* The storageClassName line of a PVC spec, if any. */}}
{{- define "store.storageClass" -}}
{{- if eq .Values.persistence.storageClass "-" }}
storageClassName: ""
{{- else if .Values.persistence.storageClass }}
storageClassName: {{ .Values.persistence.storageClass | quote }}
{{- end }}
{{- end -}}

{{/* Container securityContext: non-root, nothing extra, read-only root filesystem. */}}
{{- define "store.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: {{ ternary "true" "false" (ne .Values.podSecurity.readOnlyRootFilesystem false) }}
capabilities:
  drop: [ALL]
seccompProfile:
  type: {{ .Values.podSecurity.seccompProfile }}
{{- end -}}

{{/* Environment a WordPress or wp-cli container needs to read wp-config.php. */}}
{{- define "store.wordpressEnv" -}}
- name: WORDPRESS_DB_HOST
  value: {{ printf "%s:3306" (include "store.mariadbHost" .) | quote }}
- name: WORDPRESS_DB_NAME
  value: {{ .Values.mariadb.database | quote }}
- name: WORDPRESS_DB_USER
  value: {{ .Values.mariadb.user | quote }}
- name: WORDPRESS_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "store.secretName" . }}
      key: db-password
- name: WORDPRESS_CONFIG_EXTRA
  value: {{ .Values.wordpress.configExtra | quote }}
{{- end -}}

{{/* The platform's webhook host and port, from webhooks.url: a dict {host, port}.
     Both are rendered into PHP (the must-use plugin), so they are checked strictly. */}}
{{- define "store.webhookTarget" -}}
{{- $u := urlParse .Values.webhooks.url -}}
{{- $hostport := lower $u.host -}}
{{- $host := $hostport -}}
{{- $port := ternary "443" "80" (eq $u.scheme "https") -}}
{{- if contains ":" $hostport -}}
{{- $host = regexReplaceAll ":.*$" $hostport "" -}}
{{- $port = regexReplaceAll "^[^:]*:" $hostport "" -}}
{{- end -}}
{{- if not (regexMatch "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$" $host) -}}
{{- fail (printf "webhooks.url %q: the host must be a DNS name or an IPv4 address" .Values.webhooks.url) -}}
{{- end -}}
{{- if not (and (regexMatch "^[0-9]{1,5}$" $port) (le (atoi $port) 65535) (ge (atoi $port) 1)) -}}
{{- fail (printf "webhooks.url %q: the port must be 1-65535" .Values.webhooks.url) -}}
{{- end -}}
{{- dict "host" $host "port" (atoi $port) | toJson -}}
{{- end -}}

{{/* The must-use plugin that lets WordPress deliver webhooks to the platform (only with
     webhooks.url): wp_safe_remote_request refuses private/loopback addresses and ports
     other than 80/443/8080; this allows exactly one host and one port, nothing broader. */}}
{{- define "store.webhooksMuPlugin" -}}
{{- $t := include "store.webhookTarget" . | fromJson -}}
<?php
/**
 * Plugin Name: Urumi webhook delivery
 * Description: Lets WooCommerce deliver webhooks to the Urumi platform at {{ $t.host }}:{{ $t.port }} (in-cluster addresses and ports are refused by default). Installed by the store's setup Job from its Helm chart; do not edit.
 */

defined('ABSPATH') || exit;

const URUMI_WEBHOOK_HOST = '{{ $t.host }}';
const URUMI_WEBHOOK_PORT = {{ $t.port }};

// The platform's host counts as external even when it resolves to a private address,
// but only for a URL on the platform's port.
add_filter('http_request_host_is_external', function ($external, $host, $url) {
    if (strtolower((string) $host) !== URUMI_WEBHOOK_HOST) {
        return $external;
    }
    $scheme = strtolower((string) wp_parse_url($url, PHP_URL_SCHEME));
    $port = (int) (wp_parse_url($url, PHP_URL_PORT) ?: ($scheme === 'https' ? 443 : 80));
    return $port === URUMI_WEBHOOK_PORT ? true : $external;
}, 10, 3);

// The platform's port is allowed for the platform's host only.
add_filter('http_allowed_safe_ports', function ($ports, $host, $url) {
    if (strtolower((string) $host) === URUMI_WEBHOOK_HOST && is_array($ports)) {
        $ports[] = URUMI_WEBHOOK_PORT;
    }
    return $ports;
}, 10, 3);
{{- end -}}
