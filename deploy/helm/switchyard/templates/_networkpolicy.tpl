{{/* Egress to cluster DNS, which every tier needs to resolve Service names. */}}
{{- define "switchyard.netpol.dns" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  {{- with .Values.networkPolicy.dnsTo }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* One egress rule on a TCP port: (dict "port" 5432 "to" list-of-peers); no peers = anywhere. */}}
{{- define "switchyard.netpol.egress" -}}
- ports:
    - port: {{ .port }}
      protocol: TCP
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Egress to the OTLP collector, when tracing is on (renders nothing otherwise). */}}
{{- define "switchyard.netpol.otlp" -}}
{{- if .Values.tracing.otlpEndpoint }}
{{- include "switchyard.netpol.egress" (dict "port" .Values.tracing.port "to" .Values.networkPolicy.otlpTo) }}
{{- end }}
{{- end }}
