"""The HLS backend: the plan as Vitis HLS C++, rendered from ``hls_templates/`` (jinja2).

``design`` reads the plan's part list (``hgpipe.plan.netlist``) and renders one kernel per
stage (``kernels``), the plumbing, a ``DATAFLOW`` top with a stream per link at the plan's
depths, a testbench and ``run_hls.tcl``; ``csim`` compiles the C++ with g++ against the
``ap_int``/``hls::stream`` headers and runs it against the golden model.
"""
