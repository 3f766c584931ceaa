"use strict";
// The city overview (/map) on a phone (issue 19). folium makes its layer control open
// (collapsed=False): on a narrow screen it covered the zoom buttons. There it folds into its
// button instead (a tap opens it, a tap on the map folds it again). This runs before folium's
// own script creates the control, so Leaflet builds it folded (an init hook of the class).
if (window.matchMedia("(max-width: 600px)").matches) {
  L.Control.Layers.addInitHook(function fold() { this.options.collapsed = true; });
}
