"""Lightning callbacks: saving on preemption (``preemption``), and for video generation the learning curve of
generated motion (``motion_curve``) and the sampling and scoring of a run when its training ends (``score_samples``)."""
