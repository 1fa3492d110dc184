{{/*
Arguments of the container: `run` and the flags built from the values. Each one is rendered with
toJson, so selectors with commas, quotes or parentheses reach the exporter unchanged; lists and
maps are passed as JSON, which the exporter's flag parser reads as such.
*/}}
{{- define "etcd-latency-exporter.args" -}}
{{- $v := .Values }}
{{- $args := list "run" }}
{{- $args = append $args (printf "--web.listen-address=:%v" $v.service.port) }}
{{- $args = append $args (printf "--discovery=%s" $v.discovery) }}
{{- if eq $v.discovery "static" }}
{{- $args = append $args (printf "--static.targets-file=%s" $v.static.targetsFile) }}
{{- else }}
{{- with $v.kubernetes.namespaces }}
{{- $args = append $args (printf "--kubernetes.namespaces=%s" (toJson .)) }}
{{- end }}
{{- $args = append $args (printf "--kubernetes.selectors=%s" (toJson $v.kubernetes.selectors)) }}
{{- $args = append $args (printf "--kubernetes.container=%s" $v.kubernetes.container) }}
{{- $args = append $args (ternary "--kubernetes.etcd-resources" "--no-kubernetes.etcd-resources" $v.kubernetes.etcdResources) }}
{{- $args = append $args (printf "--kubernetes.member-grace=%s" $v.kubernetes.memberGrace) }}
{{- if not $v.kubernetes.providerCheck }}
{{- $args = append $args "--no-kubernetes.provider-check" }}
{{- end }}
{{- with include "etcd-latency-exporter.expectedStorageClasses" . }}
{{- $args = append $args (printf "--kubernetes.expected-storage-classes=%s" .) }}
{{- end }}
{{- $args = append $args (printf "--scrape.source=%s" $v.scrape.source) }}
{{- if eq $v.scrape.source "shoot-prometheus" }}
{{- with $v.scrape.shootPrometheus.url }}
{{- $args = append $args (printf "--scrape.shoot-prometheus-url=%s" .) }}
{{- end }}
{{- with $v.scrape.shootPrometheus.jobs }}
{{- $args = append $args (printf "--scrape.shoot-prometheus-jobs=%s" .) }}
{{- end }}
{{- end }}
{{- $args = append $args (ternary "--scrape.secret-refs" "--no-scrape.secret-refs" (eq (include "etcd-latency-exporter.secretRefsOn" .) "true")) }}
{{- end }}
{{- $args = append $args (printf "--scrape.interval=%s" $v.scrape.interval) }}
{{- $args = append $args (printf "--scrape.timeout=%s" $v.scrape.timeout) }}
{{- $args = append $args (printf "--scrape.scheme=%s" $v.scrape.scheme) }}
{{- $args = append $args (printf "--scrape.port=%v" $v.scrape.port) }}
{{- if $v.scrape.insecureSkipVerify }}
{{- $args = append $args "--scrape.insecure-skip-verify" }}
{{- end }}
{{- with include "etcd-latency-exporter.serverName" . }}
{{- $args = append $args (printf "--scrape.server-name=%s" .) }}
{{- end }}
{{- if include "etcd-latency-exporter.clientSecretOn" . }}
{{- with $v.scrape.clientSecret }}
{{- $args = append $args (printf "--scrape.client-secret=%s" .name) }}
{{- $args = append $args (printf "--scrape.client-secret-ca-key=%s" .caKey) }}
{{- $args = append $args (printf "--scrape.client-secret-cert-key=%s" .certKey) }}
{{- $args = append $args (printf "--scrape.client-secret-key-key=%s" .keyKey) }}
{{- end }}
{{- end }}
{{- if include "etcd-latency-exporter.tlsFilesOn" . }}
{{- with $v.scrape.tlsFiles }}
{{- if .caKey }}
{{- $args = append $args (printf "--scrape.ca-file=%s/%s" .mountPath .caKey) }}
{{- end }}
{{- $args = append $args (printf "--scrape.cert-file=%s/%s" .mountPath .certKey) }}
{{- $args = append $args (printf "--scrape.key-file=%s/%s" .mountPath .keyKey) }}
{{- end }}
{{- end }}
{{- with $v.storage.diskClassOverrides }}
{{- $args = append $args (printf "--storage.disk-class-overrides=%s" (toJson .)) }}
{{- end }}
{{- if $v.sharding.enabled }}
{{- $args = append $args "--shard=$(SHARD)" }}
{{- $args = append $args (printf "--total-shards=%v" $v.replicas) }}
{{- end }}
{{- $args = append $args (printf "--log.level=%s" $v.log.level) }}
{{- $args = append $args (printf "--log.format=%s" $v.log.format) }}
{{- range $v.extraArgs }}
{{- $args = append $args . }}
{{- end }}
{{- range $args }}
- {{ toJson . }}
{{- end }}
{{- end }}
