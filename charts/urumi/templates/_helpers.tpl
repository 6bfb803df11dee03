{{- define "urumi.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Prefix of cluster-scoped names: unique per release namespace and name. */}}
{{- define "urumi.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "urumi.fullname" .) -}}
{{- end -}}

{{- define "urumi.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: urumi
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "urumi.stableLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: urumi
{{- end -}}

{{- define "urumi.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Chart.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "urumi.serviceAccountName" -}}
{{- default (include "urumi.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "urumi.storeRole" -}}
{{- printf "%s-store" (include "urumi.clusterName" .) -}}
{{- end -}}

{{- define "urumi.image" -}}
{{- if not .tag -}}{{- fail (printf "image %s has no tag: pin one" .repository) -}}{{- end -}}
{{- if eq (toString .tag) "latest" -}}{{- fail (printf "image %s: pin a version, not latest" .repository) -}}{{- end -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}

{{- define "urumi.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: {{ .Values.podSecurity.seccompProfile }}
{{- end -}}

{{- define "urumi.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsUser }}
fsGroup: {{ .Values.podSecurity.runAsUser }}
seccompProfile:
  type: {{ .Values.podSecurity.seccompProfile }}
{{- end -}}

{{- define "urumi.postgresqlHost" -}}
{{- printf "%s-postgresql" (include "urumi.fullname" .) -}}
{{- end -}}

{{- define "urumi.replicas" -}}
{{- if eq .Values.state.backend "sqlite" -}}1{{- else -}}{{ .Values.replicaCount }}{{- end -}}
{{- end -}}
