"""The beacon path's HTTP face: the beacon and withdrawal endpoints, the client's
address behind trusted proxies, and the tour page's scripts."""
