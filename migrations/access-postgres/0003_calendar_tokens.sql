-- A token's scope: `api` tokens are bearer tokens for the whole API; `calendar`
-- tokens only read their user's deadlines as an iCalendar feed, because a calendar
-- application subscribes to a URL and cannot send an Authorization header. Both are
-- stored only as hashes and revoked the same way.
ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'api' CHECK (scope IN ('api', 'calendar'));
