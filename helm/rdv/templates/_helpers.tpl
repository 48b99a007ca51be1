{{- /*
Named templates, called with `template` (not `include`) so that the chart also renders with
the Go-template engine of tests/helm_chart.rs. Labels come out as one-line YAML flow maps,
which read the same at any indentation.
*/ -}}

{{- /* The chart's name: nameOverride, else the chart's name. */ -}}
{{- define "rdv.name" -}}
{{- trimSuffix "-" (trunc 63 (default .Chart.Name .Values.nameOverride)) -}}
{{- end -}}

{{- /*
The objects' name: fullnameOverride, else the release's name when it already holds the
chart's name ("rdv"), else RELEASE-CHART. At most 63 characters (a DNS label).
*/ -}}
{{- define "rdv.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- trimSuffix "-" (trunc 63 .Values.fullnameOverride) -}}
{{- else if eq .Release.Name (default .Chart.Name .Values.nameOverride) -}}
{{- trimSuffix "-" (trunc 63 .Release.Name) -}}
{{- else -}}
{{- trimSuffix "-" (trunc 63 (printf "%s-%s" .Release.Name (default .Chart.Name .Values.nameOverride))) -}}
{{- end -}}
{{- end -}}

{{- /* Labels that select the pods: never change them on an installed release. */ -}}
{{- define "rdv.selectorLabels" -}}
{app.kubernetes.io/name: {{ template "rdv.name" . }}, app.kubernetes.io/instance: {{ quote .Release.Name }}}
{{- end -}}

{{- /* Every object's labels: the selector labels and the versions. */ -}}
{{- define "rdv.labels" -}}
{app.kubernetes.io/name: {{ template "rdv.name" . }}, app.kubernetes.io/instance: {{ quote .Release.Name }}, app.kubernetes.io/version: {{ quote .Chart.AppVersion }}, app.kubernetes.io/managed-by: {{ quote .Release.Service }}, helm.sh/chart: {{ quote (printf "%s-%s" .Chart.Name .Chart.Version) }}}
{{- end -}}

{{- /* The Secret with the admin token and the database URL: the chart's, or existingSecret. */ -}}
{{- define "rdv.secretName" -}}
{{- if .Values.existingSecret -}}
{{- .Values.existingSecret -}}
{{- else -}}
{{- template "rdv.fullname" . -}}
{{- end -}}
{{- end -}}
