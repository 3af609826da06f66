export {
  checkDelivery,
  percentile,
  violations,
  type CheckInput,
  type CheckResult,
  type DeliveryRecord,
  type FaultRecord,
  type WriteRecord,
} from './checker.js';
export { runScenario, RELAY_BATCH_SIZE, RELAY_LANES, type MatrixEnvironment, type ScenarioDefinition, type ScenarioResult } from './harness.js';
export { runFaultMatrix, formatResults, type MatrixOptions } from './matrix.js';
export { scenarios } from './scenarios.js';
export { Workload, tenantsOf, type WorkloadOptions } from './workload.js';
export { clusterScenarios } from './cluster-scenarios.js';
export { PublishProgressMonitor, stalls, summarizeStalls, type FaultStall, type ProgressSample, type Stall } from './publish-progress.js';
