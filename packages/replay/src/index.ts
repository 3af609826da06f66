export { EventReplay, type EventLogDatabase, type ReplayHandler, type ReplayOptions, type ReplaySubscription } from './event-replay.js';
export { republishEvents, type RepublishOptions, type RepublishProgress, type RepublishResult, type EventSummary } from './republish.js';
export { resolveReplayFilter, MAX_EVENT_IDS, type ReplayFilter, type ResolvedReplayFilter } from './replay-filter.js';
export { checkEventIds } from './event-ids.js';
export { encodeResumeToken, decodeResumeToken, checkResumePoint, replayFilterHash, type ReplayCursor, type ResumePoint } from './replay-cursor.js';
export { replayMessage, targetTopic, REPLAY_HEADER, type ReplayTarget } from './replay-message.js';
export { RatePacer } from './rate-pacer.js';
export { patternToRegex } from './type-pattern-regex.js';
export { eventPages, DEFAULT_PAGE_SIZE } from './event-pages.js';
export { replayUpperBound, eventIdsUpperBound, type ReplayUpperBound } from './sql/replay-upper-bound.js';
// Kept for compatibility: the EventLog's statements are @eventbus/outbox's.
export { findEventCursor, countMatchingEvents, copyEventLogWindow, copyEventLogByIds, type EventLogWindow } from '@eventbus/outbox';
