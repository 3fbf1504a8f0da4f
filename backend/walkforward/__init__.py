"""Window files, automatic windows and their resolution against the bars."""
