{{- define "sickbay.fullname" -}}
{{- if contains "sickbay" .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-sickbay" .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sickbay.agentName" -}}{{ include "sickbay.fullname" . }}-agent{{- end -}}

{{- define "sickbay.labels" -}}
app.kubernetes.io/name: sickbay
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sickbay.selector" -}}
app.kubernetes.io/name: sickbay
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: serve
{{- end -}}

{{- define "sickbay.agentSelector" -}}
app.kubernetes.io/name: sickbay
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "sickbay.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "sickbay.tlsSecret" -}}
{{- if and (eq .Values.certificates.mode "self-managed") .Values.certificates.selfManaged.existingSecret -}}
{{ .Values.certificates.selfManaged.existingSecret }}
{{- else -}}
{{ include "sickbay.fullname" . }}-tls
{{- end -}}
{{- end -}}

{{/* The Service's DNS names, as `sickbay certs` writes them. */}}
{{- define "sickbay.dnsNames" -}}
{{- $svc := include "sickbay.fullname" . -}}
{{- $ns := .Release.Namespace -}}
- {{ $svc }}
- {{ $svc }}.{{ $ns }}
- {{ $svc }}.{{ $ns }}.svc
- {{ $svc }}.{{ $ns }}.svc.cluster.local
{{- end -}}

{{- define "sickbay.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
