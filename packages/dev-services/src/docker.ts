/** True when a Docker engine answers (testcontainers can start containers), within ~3 s. */
export async function dockerAvailable(): Promise<boolean> {
  if (process.env.EVENTBUS_NO_DOCKER === '1') return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 3000).unref());
    await Promise.race([getContainerRuntimeClient(), timeout]);
    return true;
  } catch {
    // No engine: the caller falls back to local services. Nothing to report here.
    return false;
  }
}
