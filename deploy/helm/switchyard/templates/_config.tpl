{{/* Non-secret settings of every tier (the ConfigMap's data). */}}
{{- define "switchyard.configData" -}}
SWITCHYARD_CONTROLPLANE_HOST: "0.0.0.0"
SWITCHYARD_CONTROLPLANE_PORT: {{ .Values.controlplane.service.httpPort | quote }}
SWITCHYARD_GRPC_HOST: "0.0.0.0"
SWITCHYARD_GRPC_PORT: {{ .Values.controlplane.service.grpcPort | quote }}
SWITCHYARD_CONTROLPLANE_GRPC: {{ include "switchyard.controlplaneGrpc" . | quote }}
SWITCHYARD_DATAPLANE_HOST: "0.0.0.0"
SWITCHYARD_DATAPLANE_PORT: {{ .Values.dataplane.service.port | quote }}
SWITCHYARD_INGEST_HOST: "0.0.0.0"
SWITCHYARD_INGEST_PORT: {{ .Values.ingest.service.port | quote }}
SWITCHYARD_NATS_URL: {{ .Values.nats.url | quote }}
SWITCHYARD_NATS_STREAM: {{ .Values.nats.stream | quote }}
SWITCHYARD_USAGE_SUBJECT_PREFIX: {{ .Values.nats.usageSubjectPrefix | quote }}
SWITCHYARD_NATS_DURABLE: {{ .Values.nats.durable | quote }}
SWITCHYARD_REDIS_PREFIX: {{ .Values.redis.prefix | quote }}
SWITCHYARD_STATE_DIR: "/var/lib/switchyard"
# With the migration hook, replicas must not race each other migrating at start.
SWITCHYARD_AUTO_MIGRATE: {{ not .Values.migration.enabled | quote }}
SWITCHYARD_MAX_BODY_BYTES: {{ .Values.maxBodyBytes | int64 | quote }}
{{- with .Values.timeseries.url }}
SWITCHYARD_TIMESERIES_URL: {{ . | quote }}
{{- end }}
{{- with .Values.tracing.otlpEndpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
{{- range $name, $value := .Values.extraEnv }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}
