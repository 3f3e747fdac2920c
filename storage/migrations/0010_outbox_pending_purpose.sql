-- "Is a tidy-up (or a card, a tally) of this request already waiting?" is asked for every
-- changed position. Without this index it scanned every pending row, so a backlog of sends
-- (rate limits, an outage) made each reaction cost time in proportion to the backlog.
CREATE INDEX outbox_pending_purpose ON outbox(request_id, purpose) WHERE state = 'pending';
