// A user's live events by (dataset, user id): the user's version is their count.
CREATE INDEX kgrank_event_user IF NOT EXISTS
FOR (e:KgrankEvent) ON (e.dataset, e.user_id)
