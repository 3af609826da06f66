export { ensurePostgres, createTestDatabase, withDatabase, redactUrl, LOCAL_DATABASE_URL, type ServiceHandle, type TestDatabase } from './postgres.js';
export { ensureKafka, waitForKafka, KAFKA_LOCAL_SCRIPT } from './kafka.js';
export { dockerAvailable } from './docker.js';
export { uniqueName, waitFor } from './wait.js';
export { KafkaCollector, createTopics, type CollectedMessage } from './kafka-collector.js';
export { LIMITED_SASL_USER, PrivateBroker, SASL_USER, type PrivateBrokerOptions } from './private-broker.js';
export { TcpProxy, type ProxyMode } from './tcp-proxy.js';
export { checkPerTenantOrder } from './order-check.js';
export { startAppProcess, type AppProcess } from './app-process.js';
export {
  KafkaCluster,
  KafkaClusterError,
  CLUSTER_NODE_IDS,
  DEFAULT_CLUSTER_PORT,
  type ClusterNodeId,
  type KafkaClusterErrorCode,
  type KafkaClusterOptions,
  type UnderReplicatedPartition,
} from './kafka-cluster.js';
