{{/* Names, labels and the pod pieces every tier shares. */}}

{{- define "switchyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchyard.fullname" -}}
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

{{/* Name of one tier's objects: (dict "root" $ "component" "dataplane") */}}
{{- define "switchyard.componentName" -}}
{{- printf "%s-%s" (include "switchyard.fullname" .root | trunc 50 | trimSuffix "-") .component }}
{{- end }}

{{- define "switchyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchyard.labels" -}}
helm.sh/chart: {{ include "switchyard.chart" . }}
app.kubernetes.io/name: {{ include "switchyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchyard
{{- end }}

{{/* (dict "root" $ "component" "dataplane") */}}
{{- define "switchyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchyard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "switchyard.componentLabels" -}}
{{ include "switchyard.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "switchyard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchyard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "switchyard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "switchyard.secretName" -}}
{{- default (include "switchyard.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* The Secret of provider API keys the data plane reads, or "" when there is none. */}}
{{- define "switchyard.providerKeysSecretName" -}}
{{- if .Values.secrets.existingProviderKeysSecret }}
{{- .Values.secrets.existingProviderKeysSecret }}
{{- else if .Values.secrets.providerKeys }}
{{- printf "%s-provider-keys" (include "switchyard.fullname" . | trunc 49 | trimSuffix "-") }}
{{- end }}
{{- end }}

{{- define "switchyard.configMapName" -}}
{{- include "switchyard.fullname" . }}
{{- end }}

{{/* host:port of the control plane gRPC Service, as the data plane dials it. */}}
{{- define "switchyard.controlplaneGrpc" -}}
{{- printf "%s:%v" (include "switchyard.componentName" (dict "root" . "component" "controlplane")) .Values.controlplane.service.grpcPort }}
{{- end }}

{{/* envFrom for a tier: the shared non-secret settings. */}}
{{- define "switchyard.envFrom" -}}
- configMapRef:
    name: {{ include "switchyard.configMapName" . }}
{{- end }}

{{/*
Only the Secret keys a tier needs (least privilege: the data plane never sees the
database URL): (dict "root" $ "keys" (list "SWITCHYARD_SECRET_KEY") "optional" (list ...))
*/}}
{{- define "switchyard.secretEnv" -}}
{{- $secret := include "switchyard.secretName" .root }}
{{- range .keys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
{{- end }}
{{- range .optional }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
      optional: true
{{- end }}
{{- end }}

{{/* A map of extra env rendered as a list: (dict "a" "1") */}}
{{- define "switchyard.envList" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* Liveness, readiness and startup probes against the tier's HTTP port name. */}}
{{- define "switchyard.probes" -}}
{{- $p := .root.Values.probes -}}
startupProbe:
  httpGet:
    path: {{ $p.startup.path }}
    port: {{ .port }}
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: {{ $p.liveness.path }}
    port: {{ .port }}
  initialDelaySeconds: {{ $p.liveness.initialDelaySeconds }}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: {{ $p.readiness.path }}
    port: {{ .port }}
  initialDelaySeconds: {{ $p.readiness.initialDelaySeconds }}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- end }}

{{/* Pod-level fields shared by every tier: (dict "root" $ "tier" .Values.dataplane) */}}
{{- define "switchyard.podCommon" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
serviceAccountName: {{ include "switchyard.serviceAccountName" .root }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .tier.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tier.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tier.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Spread replicas of a tier over nodes when the scheduler can. */}}
{{- define "switchyard.topologySpread" -}}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "switchyard.selectorLabels" . | nindent 8 }}
{{- end }}
