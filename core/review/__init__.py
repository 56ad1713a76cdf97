"""``groundset review``: a local web page for labelling candidates, with a queue that draws
where labels teach most and records the sampling weight of each label."""
