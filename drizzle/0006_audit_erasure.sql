-- The audit trail stays append-only, with one exception: a GDPR erasure (which sets
-- heimdall.erasure for its own transaction) may pseudonymize a user's events, changing who and
-- from where, never what, when or in which app.
CREATE OR REPLACE FUNCTION "audit_logs_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND current_setting('heimdall.erasure', true) = 'on'
     AND NEW.id = OLD.id
     AND NEW.app_id IS NOT DISTINCT FROM OLD.app_id
     AND NEW.action = OLD.action
     AND NEW.timestamp = OLD.timestamp
     AND NEW.actor_type = OLD.actor_type
     AND NEW.target_type IS NOT DISTINCT FROM OLD.target_type THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_logs is append-only';
END
$$;
