-- Version 9: the applicant's answer at intake to whether their name and organisation may be
-- published on the public site of decisions (`[publish]`): 1 yes, 0 no, NULL not answered
-- (treated as no: the page says "an individual/organisation from <country>").
ALTER TABLE requests ADD COLUMN publish_consent INTEGER;
