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

{{/* True ("true") when the exporter scrapes etcd itself over TLS in Kubernetes mode. */}}
{{- define "etcd-latency-exporter.directTls" -}}
{{- if and (eq .Values.discovery "kubernetes") (eq .Values.scrape.source "etcd") (eq .Values.scrape.scheme "https") -}}
true
{{- end }}
{{- end }}

{{/* True ("true") when the exporter reads the Secrets each member's Etcd resource or pod names. */}}
{{- define "etcd-latency-exporter.secretRefsOn" -}}
{{- if and (include "etcd-latency-exporter.directTls" .) .Values.scrape.secretRefs.enabled -}}
true
{{- end }}
{{- end }}

{{/* True ("true") when the exporter reads the etcd client Secret of a fixed name through the API. */}}
{{- define "etcd-latency-exporter.clientSecretOn" -}}
{{- if and (include "etcd-latency-exporter.directTls" .) .Values.scrape.clientSecret.enabled -}}
true
{{- end }}
{{- end }}

{{/* Server name: the value, else `{etcd}-local` in the Gardener preset when it scrapes etcd (Gardener's etcd certificates name it, not the pod IP). */}}
{{- define "etcd-latency-exporter.serverName" -}}
{{- if .Values.scrape.serverName }}
{{- .Values.scrape.serverName }}
{{- else if and .Values.gardener.enabled (eq .Values.scrape.source "etcd") }}
{{- "{etcd}-local" }}
{{- end }}
{{- end }}

{{/* Expected StorageClass per role: the Gardener preset's, overridden by kubernetes.expectedStorageClasses. */}}
{{- define "etcd-latency-exporter.expectedStorageClasses" -}}
{{- $classes := deepCopy (.Values.kubernetes.expectedStorageClasses | default dict) }}
{{- if .Values.gardener.enabled }}
{{- $classes = merge $classes (deepCopy (.Values.gardener.expectedStorageClasses | default dict)) }}
{{- end }}
{{- if $classes }}
{{- toJson $classes }}
{{- end }}
{{- end }}

{{/*
Pod labels of the Gardener preset, as JSON: egress to DNS and the runtime API server, and to every
shoot's etcd client port (scrape.source etcd) or every shoot's Prometheus (shoot-prometheus).
gardener-resource-manager turns `to-all-shoots-<service>-<protocol>-<port>` labels into network
policies for pods in `garden`; gardener.podLabels win.
*/}}
{{- define "etcd-latency-exporter.gardenerPodLabels" -}}
{{- $g := .Values.gardener }}
{{- $labels := dict "networking.gardener.cloud/to-dns" "allowed" "networking.gardener.cloud/to-runtime-apiserver" "allowed" }}
{{- if eq .Values.scrape.source "etcd" }}
{{- $port := int .Values.scrape.port }}
{{- $roles := list "all-shoots-etcd-main" "all-shoots-etcd-events" }}
{{- if $g.gardenRuntime }}
{{- $roles = concat $roles (list "virtual-garden-etcd-main" "virtual-garden-etcd-events") }}
{{- end }}
{{- range $roles }}
{{- $_ := set $labels (printf "networking.resources.gardener.cloud/to-%s-client-tcp-%d" . $port) "allowed" }}
{{- end }}
{{- else }}
{{- $_ := set $labels $g.shootPrometheusNetworkLabel "allowed" }}
{{- end }}
{{- toJson (merge (deepCopy ($g.podLabels | default dict)) $labels) }}
{{- end }}

{{/* Labels of the dashboard ConfigMap: the values, with the Gardener preset's Plutono label. */}}
{{- define "etcd-latency-exporter.dashboardLabels" -}}
{{- $labels := deepCopy (.Values.dashboards.labels | default dict) }}
{{- if .Values.gardener.enabled }}
{{- $labels = omit $labels "dashboard.monitoring.gardener.cloud/seed" "dashboard.monitoring.gardener.cloud/garden" }}
{{- $_ := set $labels (printf "dashboard.monitoring.gardener.cloud/%s" (ternary "garden" "seed" .Values.gardener.gardenRuntime)) "true" }}
{{- end }}
{{- toJson $labels }}
{{- end }}

{{/* Labels of the ServiceMonitor and the PrometheusRule: `prometheus: <name>` in the Gardener preset, then the value's. */}}
{{- define "etcd-latency-exporter.monitoringLabels" -}}
{{- $labels := dict }}
{{- if .root.Values.gardener.enabled }}
{{- $_ := set $labels "prometheus" .root.Values.gardener.prometheus }}
{{- end }}
{{- toJson (merge (deepCopy (.labels | default dict)) $labels) }}
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
{{- if eq .Values.scrape.source "shoot-prometheus" }}
{{- if ne .Values.discovery "kubernetes" }}
{{- fail "scrape.source shoot-prometheus needs discovery: kubernetes (it reads the Prometheus of each member's namespace)" }}
{{- end }}
{{- if or .Values.scrape.clientSecret.enabled .Values.scrape.tlsFiles.enabled }}
{{- fail "scrape.source shoot-prometheus reads no etcd client certificate: set scrape.clientSecret.enabled and scrape.tlsFiles.enabled to false" }}
{{- end }}
{{- end }}
{{- $ns := include "etcd-latency-exporter.namespace" . }}
{{- if and .Values.gardener.enabled (ne $ns "garden") (not .Values.gardener.networkPoliciesProvided) }}
{{- fail (printf "gardener.enabled: the release must run in namespace garden, not %q: Gardener's network policies let only pods in garden reach the shoots' etcd (install with --namespace garden or namespaceOverride: garden), or set gardener.networkPoliciesProvided=true if you provide those network policies yourself" $ns) }}
{{- end }}
{{- end }}
