{{/* Chart name, truncated to 63 characters (the DNS label limit). */}}
{{- define "etcd-latency-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, plus the chart name unless the release name contains it. */}}
{{- define "etcd-latency-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "etcd-latency-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Namespace of the namespaced objects. */}}
{{- define "etcd-latency-exporter.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{/* Labels that select the pods; never change them after the first release. */}}
{{- define "etcd-latency-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "etcd-latency-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "etcd-latency-exporter.labels" -}}
helm.sh/chart: {{ include "etcd-latency-exporter.chart" . }}
{{ include "etcd-latency-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: etcd-latency-exporter
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Name of the ServiceAccount. */}}
{{- define "etcd-latency-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "etcd-latency-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference: registry/repository, then @digest or :tag (default: appVersion). */}}
{{- define "etcd-latency-exporter.image" -}}
{{- $repo := .Values.image.repository }}
{{- with .Values.image.registry }}{{ $repo = printf "%s/%s" . $repo }}{{ end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* True ("true") when the exporter reads the etcd client Secret through the API. */}}
{{- define "etcd-latency-exporter.clientSecretOn" -}}
{{- if and (eq .Values.discovery "kubernetes") (eq .Values.scrape.scheme "https") .Values.scrape.clientSecret.enabled -}}
true
{{- end }}
{{- end }}

{{/* True ("true") when the exporter mounts one client certificate from a Secret. */}}
{{- define "etcd-latency-exporter.tlsFilesOn" -}}
{{- if and (eq .Values.scrape.scheme "https") .Values.scrape.tlsFiles.enabled -}}
true
{{- end }}
{{- end }}

{{/* Configuration errors that the schema cannot express. */}}
{{- define "etcd-latency-exporter.validate" -}}
{{- if and .Values.scrape.clientSecret.enabled .Values.scrape.tlsFiles.enabled }}
{{- fail "scrape.clientSecret.enabled and scrape.tlsFiles.enabled are mutually exclusive" }}
{{- end }}
{{- if and .Values.scrape.tlsFiles.enabled (not .Values.scrape.tlsFiles.secretName) }}
{{- fail "scrape.tlsFiles.secretName is required when scrape.tlsFiles.enabled is true" }}
{{- end }}
{{- if and (eq .Values.discovery "static") (not .Values.static.targetsFile) }}
{{- fail "static.targetsFile is required when discovery is static" }}
{{- end }}
{{- if and .Values.sharding.enabled (semverCompare "<1.28.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail "sharding.enabled needs Kubernetes >= 1.28 (the apps.kubernetes.io/pod-index pod label)" }}
{{- end }}
{{- end }}
