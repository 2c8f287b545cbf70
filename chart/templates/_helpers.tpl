{{- define "sickbay.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* 52 characters at most: "-agent" and "-controller" still fit a name's 63. */}}
{{- define "sickbay.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "sickbay.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sickbay.agentName" -}}{{ include "sickbay.fullname" . }}-agent{{- end -}}

{{- define "sickbay.labels" -}}
app.kubernetes.io/name: {{ include "sickbay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sickbay.selector" -}}
app.kubernetes.io/name: {{ include "sickbay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: serve
{{- end -}}

{{- define "sickbay.agentSelector" -}}
app.kubernetes.io/name: {{ include "sickbay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{- define "sickbay.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The injected init container's image: the small shim image, same version by default. */}}
{{- define "sickbay.shimImage" -}}
{{- if .Values.shim.image.digest -}}
{{ .Values.shim.image.repository }}@{{ .Values.shim.image.digest }}
{{- else -}}
{{ .Values.shim.image.repository }}:{{ .Values.shim.image.tag | default .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* podLabels and podAnnotations of the values, under a pod template's metadata. */}}
{{- define "sickbay.podMetadata" -}}
{{- with .Values.podAnnotations }}
annotations: {{- toYaml . | nindent 2 }}
{{- end }}
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

{{/*
"true" when Helm talks to a cluster (install, upgrade, --dry-run=server): lookup finds
kube-system there and nothing in helm template or lint, whose capabilities are only the
built-in APIs. Checks of what the cluster serves run only then.
*/}}
{{- define "sickbay.connected" -}}
{{- if lookup "v1" "Namespace" "" "kube-system" }}true{{ end -}}
{{- end -}}

{{/*
NODE_OPTIONS for a container with a memory limit (in Mi or Gi): V8's old space at 60% of
it. V8 sizes its heap from the machine's memory, not the container's, and let garbage
grow past a 512 Mi limit while a replica listed 300 Deployments of a megabyte
(tests/chaos/cache-memory.test.ts); bounded, it collects first. Empty without such a limit.
*/}}
{{- define "sickbay.nodeOptions" -}}
{{- $m := toString (dig "limits" "memory" "" (. | default dict)) -}}
{{- $mib := 0 -}}
{{- if hasSuffix "Gi" $m -}}{{- $mib = mul (trimSuffix "Gi" $m | int) 1024 -}}
{{- else if hasSuffix "Mi" $m -}}{{- $mib = trimSuffix "Mi" $m | int -}}
{{- end -}}
{{- if gt (int $mib) 0 -}}--max-old-space-size={{ div (mul $mib 3) 5 }}{{- end -}}
{{- end -}}
