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

{{/* Container securityContext: non-root, nothing extra. */}}
{{- define "store.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
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
