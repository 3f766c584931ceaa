"use strict";
// The city overview (/map) is made by folium, whose script builds Leaflet's zoom and scale
// controls with Leaflet's English defaults. This runs before that script (Leaflet is loaded,
// the map is not made yet): the zoom buttons' titles in the page's language (from the
// template's gettext, in this tag's data- attributes) and a metric-only scale bar.
(function controlsInThePagesLanguage(words) {
  L.Control.Zoom.prototype.options.zoomInTitle = words.zoomIn;
  L.Control.Zoom.prototype.options.zoomOutTitle = words.zoomOut;
  L.Control.Scale.prototype.options.imperial = false;
})(document.currentScript.dataset);
