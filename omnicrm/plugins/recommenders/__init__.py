"""The built-in recommenders: bought together, re-order timing, popular in the segment."""
