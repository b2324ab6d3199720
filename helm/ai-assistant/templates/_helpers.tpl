{{/* Names, labels, images, addresses and the checks every template shares. */}}

{{- define "ai-assistant.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ai-assistant.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's name: <fullname>-<component>, at most 63 characters. Call with (dict "root" $ "component" "x"). */}}
{{- define "ai-assistant.componentName" -}}
{{- printf "%s-%s" (include "ai-assistant.fullname" .root | trunc (int (sub 62 (len .component)))) .component | trimSuffix "-" -}}
{{- end -}}

{{- define "ai-assistant.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "ai-assistant.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ai-assistant
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of a component's objects. Call with (dict "root" $ "component" "x"). */}}
{{- define "ai-assistant.componentLabels" -}}
{{ include "ai-assistant.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector labels of a component. Call with (dict "root" $ "component" "x"). */}}
{{- define "ai-assistant.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ai-assistant.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ai-assistant.annotations" -}}
{{- with .Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* An image reference: registry/repository:tag or @digest. Call with (dict "root" $ "image" .Values.x.image "registry" "ghcr.io"). */}}
{{- define "ai-assistant.image" -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion | toString -}}
{{- $repository := .image.repository -}}
{{- if .registry -}}
{{- $repository = printf "%s/%s" .registry .image.repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "ai-assistant.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ai-assistant.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* --- Secrets ------------------------------------------------------------------------------------------------- */}}

{{- define "ai-assistant.secretName" -}}
{{- default (include "ai-assistant.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "ai-assistant.postgresqlSecretName" -}}
{{- if .Values.postgresql.enabled -}}
{{- default (include "ai-assistant.componentName" (dict "root" . "component" "postgresql")) .Values.postgresql.existingSecret -}}
{{- else -}}
{{- .Values.externalDatabase.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "ai-assistant.postgresqlSecretKey" -}}
{{- if .Values.postgresql.enabled -}}postgres-password{{- else -}}{{ .Values.externalDatabase.existingSecretPasswordKey }}{{- end -}}
{{- end -}}

{{- define "ai-assistant.redisSecretName" -}}
{{- if .Values.redis.enabled -}}
{{- default (include "ai-assistant.componentName" (dict "root" . "component" "redis")) .Values.redis.existingSecret -}}
{{- else -}}
{{- .Values.externalRedis.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "ai-assistant.redisSecretKey" -}}
{{- if .Values.redis.enabled -}}redis-password{{- else -}}{{ .Values.externalRedis.existingSecretPasswordKey }}{{- end -}}
{{- end -}}

{{- define "ai-assistant.qdrantSecretName" -}}
{{- if .Values.qdrant.enabled -}}
{{- default (include "ai-assistant.componentName" (dict "root" . "component" "qdrant")) .Values.qdrant.existingSecret -}}
{{- else -}}
{{- .Values.externalQdrant.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "ai-assistant.qdrantSecretKey" -}}
{{- if .Values.qdrant.enabled -}}qdrant-api-key{{- else -}}{{ .Values.externalQdrant.existingSecretKey }}{{- end -}}
{{- end -}}

{{/*
A generated secret value that survives upgrades: the one already in the cluster's Secret, else a new random one.
Call with (dict "root" $ "secret" "<Secret name>" "key" "<key>" "length" 48); "fernet" true makes a url-safe
base64 encoding of 32 random bytes (a Fernet key) instead of random letters and digits.
*/}}
{{- define "ai-assistant.generatedValue" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if and $existing $existing.data (hasKey $existing.data .key) -}}
{{- index $existing.data .key -}}
{{- else if .fernet -}}
{{- randBytes 32 | replace "+" "-" | replace "/" "_" | b64enc -}}
{{- else -}}
{{- randAlphaNum (int .length) | b64enc -}}
{{- end -}}
{{- end -}}

{{/* --- Addresses ----------------------------------------------------------------------------------------------- */}}

{{- define "ai-assistant.postgresqlHost" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "ai-assistant.componentName" (dict "root" . "component" "postgresql") -}}
{{- else -}}
{{- .Values.externalDatabase.host -}}
{{- end -}}
{{- end -}}

{{- define "ai-assistant.postgresqlPort" -}}
{{- if .Values.postgresql.enabled -}}5432{{- else -}}{{ .Values.externalDatabase.port }}{{- end -}}
{{- end -}}

{{- define "ai-assistant.postgresqlDatabase" -}}
{{- if .Values.postgresql.enabled -}}{{ .Values.postgresql.database }}{{- else -}}{{ .Values.externalDatabase.database }}{{- end -}}
{{- end -}}

{{- define "ai-assistant.postgresqlUsername" -}}
{{- if .Values.postgresql.enabled -}}{{ .Values.postgresql.username }}{{- else -}}{{ .Values.externalDatabase.username }}{{- end -}}
{{- end -}}

{{- define "ai-assistant.redisEnabled" -}}
{{- if or .Values.redis.enabled .Values.externalRedis.host -}}true{{- end -}}
{{- end -}}

{{- define "ai-assistant.qdrantUrl" -}}
{{- if .Values.qdrant.enabled -}}
{{- printf "http://%s:6333" (include "ai-assistant.componentName" (dict "root" . "component" "qdrant")) -}}
{{- else -}}
{{- .Values.externalQdrant.url -}}
{{- end -}}
{{- end -}}

{{/* "true" when long-term memory lives in the orchestrator's own volume (Qdrant Edge in DATA_DIR/vectors). */}}
{{- define "ai-assistant.embeddedVectors" -}}
{{- if and .Values.memory.enabled (not (include "ai-assistant.qdrantUrl" .)) -}}true{{- end -}}
{{- end -}}

{{/* "true" when the orchestrator's DATA_DIR is a PersistentVolumeClaim (only the embedded vector store needs one). */}}
{{- define "ai-assistant.orchestratorPersistent" -}}
{{- if and (include "ai-assistant.embeddedVectors" .) .Values.orchestrator.persistence.enabled -}}true{{- end -}}
{{- end -}}

{{/* "true" when more than one orchestrator process may run at once: replicas, an autoscaler or workers. */}}
{{- define "ai-assistant.orchestratorScaled" -}}
{{- $values := .Values.orchestrator -}}
{{- if or (gt (int $values.replicaCount) 1) $values.autoscaling.enabled (gt (int $values.workers) 1) -}}true{{- end -}}
{{- end -}}

{{/* The port of an http(s) URL: the one written in it, else 443 or 80. Call with the URL. */}}
{{- define "ai-assistant.urlPort" -}}
{{- $host := (urlParse .).host -}}
{{- $port := regexFind ":[0-9]+$" $host | trimPrefix ":" -}}
{{- if $port -}}{{ $port }}{{- else if hasPrefix "https://" . -}}443{{- else -}}80{{- end -}}
{{- end -}}

{{- define "ai-assistant.publicUrl" -}}
{{- if .Values.frontend.publicUrl -}}
{{- .Values.frontend.publicUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) (first .Values.ingress.hosts) -}}
{{- end -}}
{{- end -}}

{{/*
Environment shared by the orchestrator, the frontend and the migrations Job: the database (DATABASE_URL is built
from its parts, with the password from its Secret through Kubernetes' $(VAR) expansion) and Redis.
*/}}
{{- define "ai-assistant.storageEnv" -}}
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "ai-assistant.postgresqlSecretName" . }}
      key: {{ include "ai-assistant.postgresqlSecretKey" . }}
- name: DATABASE_URL
  value: {{ printf "postgresql+asyncpg://%s:$(POSTGRES_PASSWORD)@%s:%s/%s" (include "ai-assistant.postgresqlUsername" .) (include "ai-assistant.postgresqlHost" .) (include "ai-assistant.postgresqlPort" .) (include "ai-assistant.postgresqlDatabase" .) | quote }}
{{- include "ai-assistant.redisEnv" . }}
{{- end -}}

{{/* REDIS_URL (with REDIS_PASSWORD from its Secret), when there is a Redis. */}}
{{- define "ai-assistant.redisEnv" -}}
{{- if include "ai-assistant.redisEnabled" . }}
{{- $host := ternary (include "ai-assistant.componentName" (dict "root" . "component" "redis")) .Values.externalRedis.host .Values.redis.enabled }}
{{- $port := ternary 6379 .Values.externalRedis.port .Values.redis.enabled }}
{{- $database := ternary 0 .Values.externalRedis.database .Values.redis.enabled }}
{{- $scheme := ternary "redis" (ternary "rediss" "redis" .Values.externalRedis.tls) .Values.redis.enabled }}
{{- if include "ai-assistant.redisSecretName" . }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "ai-assistant.redisSecretName" . }}
      key: {{ include "ai-assistant.redisSecretKey" . }}
- name: REDIS_URL
  value: {{ printf "%s://:$(REDIS_PASSWORD)@%s:%v/%v" $scheme $host $port $database | quote }}
{{- else }}
- name: REDIS_URL
  value: {{ printf "%s://%s:%v/%v" $scheme $host $port $database | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* REDIS_KEY_PREFIX of the orchestrator: a Redis outside the release may be shared, so its keys get the release's name. */}}
{{- define "ai-assistant.redisKeyPrefixEnv" -}}
{{- if .Values.externalRedis.host }}
- name: REDIS_KEY_PREFIX
  value: {{ .Values.externalRedis.keyPrefix | default (printf "%s:" .Release.Name) | quote }}
{{- end }}
{{- end -}}

{{/*
PROMETHEUS_MULTIPROC_DIR, when a pod runs several worker processes whose metrics /metrics must add up: an emptyDir
of its own (the root file system is read-only), emptied by the service when it starts. Call with (dict "root" $
"workers" n); the "metrics" volume is mounted at the same path.
*/}}
{{- define "ai-assistant.multiprocessEnv" -}}
{{- if and .root.Values.metrics.enabled (gt (int .workers) 1) }}
- name: PROMETHEUS_MULTIPROC_DIR
  value: /var/lib/prometheus-multiproc
{{- end }}
{{- end -}}

{{/*
Egress of the orchestrator and the frontend when networkPolicy.allowExternalEgress is false: DNS, the pods of the
namespace (the datastores, the orchestrator, MCP servers found by discovery), port 443 and the Kubernetes API
anywhere (the model, MCP servers elsewhere and their authorization servers, sign-in providers), and the ports of
the URLs the values name. Call with (dict "root" $ "ports" (list ...) "kubernetesApi" bool): the component's own
ports, and whether it watches the Kubernetes API, which many clusters serve on 6443 behind the 443 of its Service.
*/}}
{{- define "ai-assistant.egressRules" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- to:
    - podSelector: {}
- ports:
    - port: 443
      protocol: TCP
    {{- if .kubernetesApi }}
    - port: 6443
      protocol: TCP
    {{- end }}
{{- $ports := list -}}
{{- $covered := ternary (list 53 443 6443) (list 53 443) (eq .kubernetesApi true) -}}
{{- range .ports -}}
{{- if and . (not (has (int .) $covered)) (not (has (int .) $ports)) -}}
{{- $ports = append $ports (int .) -}}
{{- end -}}
{{- end -}}
{{- if $ports }}
- ports:
    {{- range $ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- with .root.Values.networkPolicy.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Environment variables from a map of NAME: value (the components' "config"). */}}
{{- define "ai-assistant.configEnv" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The pod's security context and the volumes every assistant pod mounts for its writable paths. */}}
{{- define "ai-assistant.podSecurityContext" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "ai-assistant.containerSecurityContext" -}}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end -}}

{{/* Prefer spreading a component's replicas over nodes. Call with (dict "root" $ "component" "x"). */}}
{{- define "ai-assistant.softAntiAffinity" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "ai-assistant.selectorLabels" . | nindent 12 }}
{{- end -}}

{{/* A NetworkPolicy peer: this release's pods of the given components. Call with (dict "root" $ "components" (list ...)). */}}
{{- define "ai-assistant.fromComponents" -}}
- podSelector:
    matchExpressions:
      - key: app.kubernetes.io/instance
        operator: In
        values: [{{ .root.Release.Name | quote }}]
      - key: app.kubernetes.io/component
        operator: In
        values: {{ toJson .components }}
{{- end -}}

{{/* --- Impossible values: fail with a message that says what to change ------------------------------------------ */}}

{{- define "ai-assistant.validate" -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.externalDatabase.host) -}}
{{- fail "ai-assistant: postgresql.enabled is false, so set externalDatabase.host (and externalDatabase.existingSecret)" -}}
{{- end -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.externalDatabase.existingSecret) -}}
{{- fail "ai-assistant: an external database needs externalDatabase.existingSecret, the Secret holding its password" -}}
{{- end -}}
{{- if and .Values.postgresql.enabled .Values.externalDatabase.host -}}
{{- fail "ai-assistant: set either postgresql.enabled or externalDatabase.host, not both" -}}
{{- end -}}
{{- if and .Values.redis.enabled .Values.externalRedis.host -}}
{{- fail "ai-assistant: set either redis.enabled or externalRedis.host, not both" -}}
{{- end -}}
{{- if and .Values.qdrant.enabled .Values.externalQdrant.url -}}
{{- fail "ai-assistant: set either qdrant.enabled or externalQdrant.url, not both" -}}
{{- end -}}
{{- if and (eq .Values.environment "production") (not (include "ai-assistant.publicUrl" .)) -}}
{{- fail "ai-assistant: production needs the address users reach: set frontend.publicUrl, or ingress.enabled with ingress.hosts" -}}
{{- end -}}
{{- if and (gt (int .Values.frontend.replicaCount) 1) (not (include "ai-assistant.redisEnabled" .)) -}}
{{- fail "ai-assistant: several frontend replicas share sessions through Redis: enable redis or set externalRedis.host (or frontend.replicaCount=1)" -}}
{{- end -}}
{{- range list "orchestrator" "frontend" -}}
{{- $autoscaling := (index $.Values .).autoscaling -}}
{{- if and $autoscaling.enabled (gt (int $autoscaling.minReplicas) (int $autoscaling.maxReplicas)) -}}
{{- fail (printf "ai-assistant: %s.autoscaling.minReplicas (%v) is more than maxReplicas (%v)" . $autoscaling.minReplicas $autoscaling.maxReplicas) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.tracing.enabled (not .Values.tracing.otlpEndpoint) -}}
{{- fail "ai-assistant: tracing.enabled needs tracing.otlpEndpoint, the OTLP/HTTP collector the pods send their traces to (e.g. http://otel-collector.observability:4318)" -}}
{{- end -}}
{{- if and (include "ai-assistant.orchestratorScaled" .) (not (include "ai-assistant.redisEnabled" .)) -}}
{{- fail "ai-assistant: several orchestrator processes (orchestrator.replicaCount, orchestrator.autoscaling or orchestrator.workers above 1) share rate limits and state through Redis: enable redis or set externalRedis.host" -}}
{{- end -}}
{{- if and (include "ai-assistant.orchestratorScaled" .) (include "ai-assistant.embeddedVectors" .) -}}
{{- fail "ai-assistant: without a Qdrant server, long-term memory lives in the orchestrator's volume, which one process opens: enable qdrant or set externalQdrant.url, or keep orchestrator.replicaCount and orchestrator.workers at 1 without autoscaling (or set memory.enabled=false)" -}}
{{- end -}}
{{- $names := list -}}
{{- range .Values.mcpServers.servers -}}
{{- if has .name $names -}}
{{- fail (printf "ai-assistant: two mcpServers.servers are named %q; names must be unique" .name) -}}
{{- end -}}
{{- $names = append $names .name -}}
{{- if and (not .image) (not $.Values.mcpServers.image.repository) -}}
{{- fail (printf "ai-assistant: mcpServers.servers %q has no image, and mcpServers.image.repository is empty" .name) -}}
{{- end -}}
{{- end -}}
{{- if and (not .Values.discovery.enabled) (gt (len .Values.mcpServers.servers) 0) -}}
{{- range .Values.mcpServers.servers -}}
{{- if .enabled -}}
{{- fail "ai-assistant: mcpServers.servers are found by discovery: keep discovery.enabled, or disable the servers and list them in orchestrator.config.MCP_DISCOVERY_URLS" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
