-- One challenge store (issue 10 item 1): the dynamic-password token's
-- challenges live in auth_challenges with every other tool's (factor 'otp';
-- ref holds the token id, data the OCRA question), so otp_challenges goes.
-- Its rows are at most challenge-ttl (5 minutes) old and are not carried
-- over: a customer answering one across the upgrade is told the challenge
-- is unknown and the login page begins a new one at once.
DROP TABLE IF EXISTS otp_challenges;
